"""Test environment: offline, quiet, and an LLM cache that never leaks between tests."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The dequantized embedded model is shared across tests (converted once, ~20 s).
os.environ.setdefault("FR_MODEL_CACHE_DIR", str(ROOT / ".cache" / "models"))
os.environ.setdefault("FR_LLM_BACKOFF_S", "0.01")
# Sentence embeddings are a pure function of the text: shared across tests, so the judge's
# override embeds the calibration files once per session, not once per pipeline test.
os.environ.setdefault("FR_EMBEDDING_CACHE_DIR", str(ROOT / ".cache" / "embeddings-tests"))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_llm_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FR_LLM_CACHE_DIR", str(tmp_path_factory.mktemp("llmcache")))


@pytest.fixture
def root() -> Path:
    return ROOT
