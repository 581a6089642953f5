"""The embedded local model: load, cache dequantized weights, batched generation.

Serves `local/<name>` models for the LLM client's custom LiteLLM provider. Concurrent requests
are queued and a worker thread runs one `generate` per batch (on 2 CPU cores, 32 sequences in
one batch give several times the tokens/s of one at a time). Requests that ask for JSON are
decoded under a JSON-schema grammar (xgrammar), so even a 135M model returns parseable JSON.

The code lives by concern in `weights` (find, dequantize, load), `threads` (torch thread
count), `batching` (the engine), `sampler` (seeded sampling) and `registry` (names -> engines);
this module re-exports their public names. These modules and the training code are the only
ones that import torch/transformers.
"""

from __future__ import annotations

from falsereject.llm.local.batching import (
    ENV_BATCH,
    ENV_WAIT_MS,
    REPETITION_PENALTY,
    Engine,
    GenRequest,
    GenResult,
)
from falsereject.llm.local.registry import _ENGINES, _REGISTRY, get_engine, register_local_model
from falsereject.llm.local.sampler import SeededSampler
from falsereject.llm.local.threads import ENV_THREADS, idle_cores, torch_threads
from falsereject.llm.local.weights import (
    ENV_MODEL_CACHE,
    LocalSpec,
    ModelUnavailableError,
    dequantized_dir,
    gguf_path,
    load,
    model_cache_root,
    weights_dir,
)

__all__ = [
    "ENV_BATCH", "ENV_MODEL_CACHE", "ENV_THREADS", "ENV_WAIT_MS", "REPETITION_PENALTY", "Engine",
    "GenRequest", "GenResult", "LocalSpec", "ModelUnavailableError", "SeededSampler", "_ENGINES",
    "_REGISTRY", "dequantized_dir", "get_engine", "gguf_path", "idle_cores", "load",
    "model_cache_root", "register_local_model", "torch_threads", "weights_dir",
]
