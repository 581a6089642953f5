"""Guarantee: with FR_STUDENT_BACKEND=vllm the base and LoRA-tuned students are answered by an
OpenAI-compatible server under the names `register_student` derives (the loopback test server
plays vLLM here, listing the base and adapter names the way `vllm serve --lora-modules` does);
params do not change; the in-process engine stays the default; a name the server does not serve
stops before any call; `serve_args` prints the matching `vllm serve` arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from falsereject.core.config import ConfigError, EvalGenerationConfig, ModelConfig
from falsereject.evaluation.answers import answer, models_under_test
from falsereject.evaluation.benchmarks.sample import Sample
from falsereject.llm import ChatResult, LLMClient, run
from falsereject.llm.local.engine import ModelUnavailableError
from falsereject.llm.local.student import register_student, student_spec
from falsereject.llm.vllm_student import serve_args
from falsereject.testing.server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
CFG = ModelConfig(**yaml.safe_load((ROOT / "conf/model/smollm2.yaml").read_text()))
GEN = EvalGenerationConfig(max_tokens={"instruct": 32, "cot": 64}, temperature=0.0,
                           system_prompt=None)


def adapter(root: Path, arm: str, payload: bytes, rank: int = 8) -> Path:
    d = root / arm / "adapter"
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text(f'{{"r": {rank}, "peft_type": "LORA"}}')
    (d / "adapter_model.safetensors").write_bytes(payload)
    return root / arm


@pytest.fixture
def sft(tmp_path):
    root = tmp_path / "sft"
    lora_a, lora_b = adapter(root, "falsereject", b"weights a"), adapter(root, "safety", b"b", 32)
    full = root / "full" / "model"
    full.mkdir(parents=True)
    (full / "config.json").write_text("{}")
    return root, lora_a, lora_b, root / "full"


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("FR_LLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FR_LLM_BACKOFF_S", "0.01")
    monkeypatch.delenv("FR_STUDENT_BACKEND", raising=False)
    return monkeypatch


def test_local_engine_stays_the_default(env, sft):
    _, lora_a, *_ = sft
    assert register_student(CFG) == "local/student-smollm2"
    assert register_student(CFG, lora_a).startswith("local/student-smollm2-sft-")


def test_eval_answers_base_and_adapters_through_the_vllm_server(env, sft):
    root, lora_a, lora_b, full = sft
    names = [student_spec(CFG, d)[1] for d in (None, lora_a, lora_b)]
    with FakeOpenAIServer(served_models=names) as srv:
        env.setenv("FR_STUDENT_BACKEND", "vllm")
        env.setenv("FR_STUDENT_VLLM_BASE", srv.base_url)
        base_id = register_student(CFG)
        arm_ids = {"falsereject": register_student(CFG, lora_a),
                   "safety": register_student(CFG, lora_b)}
        assert base_id == "openai/student-smollm2"
        assert [base_id, *arm_ids.values()] == [f"openai/{n}" for n in names]
        # a full fine-tune cannot be attached to the server: the in-process engine serves it
        assert register_student(CFG, full).startswith("local/student-smollm2-sft-")

        samples = [Sample(id=f"s{i}", prompt=f"How do I store bleach safely? ({i})",
                          label="benign", category=None, benchmark="t", locator=f"t:{i}")
                   for i in range(4)]
        client = LLMClient("eval@test")
        for mut in models_under_test(base_id, arm_ids, GEN, []):
            results = run(answer(client, mut, samples, None, seed=0))
            assert all(isinstance(r, ChatResult) for r in results), results
        served = [body["model"] for body in srv.requests]
        assert sorted(set(served)) == sorted(names)
        assert all(served.count(n) == 4 for n in names)
        assert all(body["max_tokens"] == 32 for body in srv.requests)

        # the answers are cached under the served ids: a second eval pays nothing
        before = srv.request_count
        again = LLMClient("eval@test-again")
        for mut in models_under_test(base_id, arm_ids, GEN, []):
            assert all(r.cached for r in run(answer(again, mut, samples, None, seed=0)))
        assert srv.request_count == before


def test_an_adapter_the_server_does_not_serve_stops_before_any_call(env, sft):
    _, lora_a, _, _ = sft
    with FakeOpenAIServer(served_models=["student-smollm2"]) as srv:
        env.setenv("FR_STUDENT_BACKEND", "vllm")
        env.setenv("FR_STUDENT_VLLM_BASE", srv.base_url + "/")
        with pytest.raises(ModelUnavailableError, match="does not serve 'student-smollm2-sft-"):
            register_student(CFG, lora_a)
        assert srv.request_count == 0


def test_backend_settings_are_checked(env):
    env.setenv("FR_STUDENT_BACKEND", "vllm")
    with pytest.raises(ConfigError, match="FR_STUDENT_VLLM_BASE"):
        register_student(CFG)
    env.setenv("FR_STUDENT_BACKEND", "vlm")
    with pytest.raises(ConfigError, match="FR_STUDENT_BACKEND"):
        register_student(CFG)


def test_serve_args_name_the_base_and_every_adapter(sft, tmp_path):
    root, lora_a, lora_b, _ = sft
    args = serve_args(CFG, root, base_dir=str(tmp_path / "base"))
    assert args[:3] == [str(tmp_path / "base"), "--served-model-name", "student-smollm2"]
    assert "--enable-lora" in args
    assert args[args.index("--max-lora-rank") + 1] == "32"
    modules = args[args.index("--lora-modules") + 1:]
    assert modules == [f"{student_spec(CFG, d)[1]}={d / 'adapter'}" for d in (lora_a, lora_b)]
