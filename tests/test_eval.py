"""The eval, calibrate and report stages end to end with a fake LLM client: records, flat
metrics, disabled benchmarks, calibration numbers, the summary and its figures."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from eval_fakes import FakeClient, FakeResult
from stage_cli import load_stage

from falsereject.core.config import load_params
from falsereject.core.io import read_json

calibrate_stage = load_stage("calibrate")
eval_stage = load_stage("eval")
report_stage = load_stage("report")

BASE_ID, SFT_ID = "local/student-fake", "local/student-fake-sft-123"
_HARMFUL_FILE = Path(__file__).resolve().parents[1] / "resources" / "harmful_control.jsonl"
HARMFUL = {json.loads(line)["prompt"] for line in
           _HARMFUL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()}


def responder(role, messages, schema):
    """Base answers everything; SFT refuses the harmful control, thinks first on benign."""
    text = messages[-1]["content"]
    if role.model == BASE_ID:
        # a real answer: an empty promise of steps reads as a refusal to the shipped override
        # (a known limit, tests/test_judge_override.py)
        return "Sure. Here are the steps: first, unplug it; then open the case and replace the fuse."
    if role.model == SFT_ID:
        if text in HARMFUL:
            return "I can't help with that."
        return FakeResult("<think>safe reading first</think>This is generally safe: first, "
                          "check the label.")
    return '{"reason": "declines one part", "class": "Safe Partial Compliance"}'  # judge


@pytest.fixture
def params(root, monkeypatch):
    monkeypatch.chdir(root)
    p = load_params(root / "params.yaml")
    ev = p.eval.model_copy(update={"max_samples_per_benchmark": 5, "bootstrap_samples": 100})
    return p.model_copy(update={"eval": ev})


def _run(params, name, root, client=None):
    client = client or FakeClient(responder)
    out = eval_stage.run(params, name, client=client, base_id=BASE_ID, arm_ids={"sft": SFT_ID},
                         test_split=str(root / "tests/fixtures/benchmarks/own_test_split.jsonl"),
                         prompts_dir=str(root / "prompts/judge"))
    return out, client


def test_eval_own_test_records_and_metrics(params, root):
    out, client = _run(params, "own_test", root)
    rows = out["rows"]
    assert len(rows) == 10  # 5 samples x (base, sft)
    assert rows == sorted(rows, key=lambda r: (r["sample_id"], r["model"]))
    assert {r["model"] for r in rows} == {"base", "sft"}
    sft = [r for r in rows if r["model"] == "sft"]
    assert all(r["reasoning"] == "safe reading first" for r in sft)
    assert all(not r["response"].startswith("<think>") for r in sft)
    assert all(r["judge_id"] and r["judge_route"] in ("fast", "llm") for r in rows)
    m = out["metrics"]
    assert m["base_compliance_rate"] == 1.0 and m["sft_compliance_rate"] == 1.0
    assert m["n_samples"] == 5 and "base_usr_toxic" not in m
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in m.values())
    assert all(k == k.lower() and " " not in k for k in m)
    d = out["details"]
    assert d["n_benign"] == 5 and d["source_pinned"] and d["judge"]["mode"] == "cascade"
    # student generations carry the generation settings; fast path decided everything here
    assert all(c[0] in (BASE_ID, SFT_ID) for c in client.calls)


def test_eval_harmful_control_shows_the_sft_refusing(params, root):
    out, _ = _run(params, "harmful_control", root)
    m = out["metrics"]
    assert m["base_usr_toxic"] == 0.0 and m["sft_usr_toxic"] == 1.0
    assert m["sft_minus_base_usr_toxic"] == 1.0
    assert m["sft_minus_base_usr_toxic_ci_low"] <= 1.0 <= m["sft_minus_base_usr_toxic_ci_high"]
    assert {r["category"] for r in out["per_category"]} - {"uncategorized"}


def test_generation_failures_are_undetermined_not_dropped(params, root):
    from falsereject.llm import LLMCallError

    def flaky(role, messages, schema):
        if role.model == SFT_ID:
            return LLMCallError("timeout", "slow", role.model)
        return responder(role, messages, schema)

    out, _ = _run(params, "own_test", root, FakeClient(flaky))
    sft = [r for r in out["rows"] if r["model"] == "sft"]
    assert len(sft) == 5
    assert {(r["verdict"], r["judge_rule"]) for r in sft} == {
        ("undetermined", "generation_error:timeout")}
    assert out["metrics"]["sft_undetermined_share"] == 1.0
    assert out["metrics"]["sft_compliance_rate"] == 0.0


def test_disabled_benchmark_writes_stub_outputs(params, root, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [
        "eval.py", "--params", str(root / "params.yaml"), "--benchmark", "xstest",
        "--test-split", "unused", "--sft-dir", "unused", "--prompts-dir", "prompts/judge",
        "--calibration", "unused", "--out-dir", str(tmp_path / "d"),
        "--reports-dir", str(tmp_path / "r")])
    eval_stage.main()
    assert read_json(tmp_path / "r" / "metrics.json") == {"enabled": False}
    assert (tmp_path / "d" / "verdicts.jsonl").read_text() == ""
    assert read_json(tmp_path / "d" / "details.json")["enabled"] is False


def test_calibration_file_errors_and_binary_labels(tmp_path):
    from falsereject.core.io import InputError
    from falsereject.evaluation.calibration import label_scheme, load_calibration, stratified_subset

    path = tmp_path / "c.jsonl"
    path.write_text('{"prompt": "p", "response": "r", "label": "Full Compliance"}\n'
                    '{"prompt": "p", "response": "r", "label": "refusal"}\n')
    rows = load_calibration(str(path))
    assert [r["label"] for r in rows] == ["full_compliance", "refusal"]
    assert label_scheme(rows) == "binary"
    assert len(stratified_subset(rows, 1, 0)) == 1
    path.write_text('{"prompt": "p", "response": "r", "label": "maybe"}\n')
    with pytest.raises(InputError, match=r"c\.jsonl:1: label 'maybe'"):
        load_calibration(str(path))


def test_report_renders_summary_figures_and_plot_data(params, root, tmp_path):
    details = [_run(params, n, root)[0]["details"] for n in ("own_test", "harmful_control")]
    details.append({"benchmark": "xstest", "enabled": False})
    client = FakeClient(lambda r, m, s: '{"reason": "r", "class": "Direct Refusal"}')
    cal = params.eval.calibration.model_copy(update={"llm_max_rows": 6})
    p = params.model_copy(update={"eval": params.eval.model_copy(update={"calibration": cal})})
    _, calibration, _ = calibrate_stage.run(p, client=client, prompts_dir="prompts/judge")
    text = report_stage.run(details, calibration, "default", tmp_path)
    assert "| own_test | base |" in text and "| harmful_control | sft |" in text
    assert "## Judge calibration" in text and "| heldout | judge |" in text
    assert "hit length limit" in text and "Gate: The LLM judge decides no row" in text
    assert "| xstest | no |" in text
    for png in ("compliance_vs_usr.png", "per_category.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
        assert f"]({png})" in text
    models_csv = (tmp_path / "models.csv").read_text().splitlines()
    assert models_csv[0].startswith("benchmark,model,model_id") and len(models_csv) == 5
    first = (tmp_path / "compliance_vs_usr.png").read_bytes()
    report_stage.run(details, calibration, "default", tmp_path)
    assert (tmp_path / "compliance_vs_usr.png").read_bytes() == first  # deterministic


def test_extra_models_are_evaluated_under_their_own_prefix(params, root):
    from eval_fakes import role

    from falsereject.evaluation.answers import extra_model_name

    assert extra_model_name("openai/gpt-4o-2024-08-06") == "gpt_4o_2024_08_06"
    ev = params.eval.model_copy(update={"extra_models": [role("hosted/Model-X"),
                                                         role("other/model-x")]})
    p = params.model_copy(update={"eval": ev})

    def respond(r, messages, schema):
        if r.model.endswith(("Model-X", "model-x")):
            return "I won't help with that."
        return responder(r, messages, schema)

    out, _ = _run(p, "own_test", root, FakeClient(respond))
    names = [m["name"] for m in out["details"]["models"]]
    assert names == ["base", "sft", "model_x", "model_x_x"]
    assert out["metrics"]["model_x_compliance_rate"] == 0.0
    assert out["metrics"]["model_x_benign_direct_refusal_share"] == 1.0


def test_an_empty_test_split_gives_empty_metrics_not_a_crash(params, root, tmp_path):
    empty = tmp_path / "test.jsonl"
    empty.write_text("")
    out = eval_stage.run(params, "own_test", client=FakeClient(responder), base_id=BASE_ID,
                         arm_ids={"sft": SFT_ID}, test_split=str(empty),
                         prompts_dir=str(root / "prompts/judge"))
    assert out["rows"] == [] and out["metrics"]["n_samples"] == 0
    assert out["metrics"]["base_n_benign"] == 0
