"""A real two-step LoRA run of stage `sft@general_falsereject` on the embedded student: finite
loss, loadable adapter."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from falsereject.core.compose import compose
from falsereject.core.config import validate

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests/fixtures"


@pytest.mark.slow
def test_sft_smoke_two_steps_then_adapter_loads(tmp_path):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(compose(["experiment=smoke"]))
    p = validate(yaml.safe_load(params_file.read_text()))
    assert p.sft.max_steps == 2 and p.sft.method == "lora"
    out, reports = tmp_path / "models/sft", tmp_path / "reports/sft"
    # the sft_data stage's recipe: one safety pair and one base-student answer
    recipe = tmp_path / "recipe.jsonl"
    recipe.write_text(json.dumps({"id": "safety:s1", "part": "safety", "prompt": "Insult my boss.",
                                  "response": "I won't write insults about anyone."}) + "\n"
                      + json.dumps({"id": "general:g1", "part": "general",
                                    "prompt": "Capital of Portugal?", "response": "Lisbon."}) + "\n")
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "stages/sft.py", "--params", str(params_file),
         "--arm", "general_falsereject", "--recipe", str(recipe),
         "--train", str(FIX / "export_train.jsonl"), "--heldout", str(FIX / "export_test.jsonl"),
         "--out", str(out), "--reports", str(reports)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["train_tokens"] > 0
    assert math.isfinite(metrics["final_loss"]) and metrics["final_loss"] > 0
    assert metrics["examples"] == 6  # 4 FalseReject records + the 2 recipe rows
    loss_rows = (reports / "plots/metrics/train/loss.tsv").read_text().splitlines()
    assert loss_rows[0].split("\t") == ["step", "loss"] and len(loss_rows) == 3
    assert (reports / "plots/metrics/train/learning_rate.tsv").exists()
    assert (reports / "loss.png").read_bytes()[:4] == b"\x89PNG"
    samples = json.loads((reports / "samples.json").read_text())["samples"]
    assert len(samples) == 1 and samples[0]["base"] and samples[0]["sft"]

    info = json.loads((out / "sft_info.json").read_text())
    assert info["base_model"]["hf_id"] == p.model.hf_id and info["steps"] == 2
    adapter_cfg = json.loads((out / "adapter/adapter_config.json").read_text())
    assert adapter_cfg["base_model_name_or_path"] == p.model.hf_id  # no machine path
    assert not (out / "model").exists()

    # the adapter loads on the base student, as the evaluation stage serves it
    from falsereject.llm.local.engine import load
    from falsereject.llm.local.student import register_student, sft_spec

    model_id = register_student(p.model, out)
    assert model_id.startswith("local/student-smollm2-sft-")
    model, tok = load(sft_spec(p.model, out))
    ids = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    gen = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]
