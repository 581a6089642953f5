"""`make compare`: experiments from `dvc exp show --json` side by side, columns named by the
conf options that differ; on fabricated output and on two real tiny DVC experiments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import compare_experiments as ce  # noqa: E402


def _data(model: str, sft: str, lr: float, usr_benign: float | None) -> dict:
    params = {"model": {"name": model, "hf_id": f"x/{model}"}, "sft": {"name": sft,
              "learning_rate": lr}, "run": {"seed": 0}, "experiment": {"name": "default"}}
    head = {} if usr_benign is None else {
        "general_usr_benign": usr_benign, "general_usr_benign_ci_low": usr_benign - 0.1,
        "general_usr_benign_ci_high": usr_benign + 0.1, "general_usr_toxic": 0.8,
        "base_usr_toxic": 0.1, "general_falsereject_usr_benign": 0.9,
        "general_falsereject_minus_general_usr_benign": 0.9 - usr_benign}
    return {"rev": "abc", "params": {"params.yaml": {"data": params}},
            "metrics": {"reports/eval/metrics.json": {"data": head},
                        "reports/capability/metrics.json": {"data": {
                            "base": {"capability_mc": {"acc": 0.41}},
                            "general": {"capability_mc": {"acc": 0.39}}}}}}


FAKE = [
    {"rev": "workspace", "name": None, "error": None, "experiments": None,
     "data": _data("smollm2", "lora", 4e-4, 0.5)},
    {"rev": "0123456789abcdef", "name": "main", "error": None, "data": _data("smollm2", "lora",
                                                                             4e-4, 0.5),
     "experiments": [
         {"name": "exp-qwen", "executor": None,
          "revs": [{"rev": "fff111", "name": "exp-qwen", "experiments": None,
                    "data": _data("qwen", "lora", 4e-4, 0.6)}]},
         {"name": "exp-lr", "executor": None,
          "revs": [{"rev": "eee222", "name": "exp-lr", "experiments": None,
                    "data": _data("smollm2", "lora", 1e-4, None)}]}]},
]


def test_rows_columns_and_table_from_fabricated_output(tmp_path):
    rows = ce.experiments(FAKE)
    assert [r["name"] for r in rows] == ["workspace", "main", "exp-qwen", "exp-lr"]
    cols = ce.differing_columns(rows)
    # the group option that differs is named by its group, its own keys are not repeated;
    # an override outside a differing group keeps its dotted key; equal keys are left out
    assert cols == [("model", "model.name"), ("sft.learning_rate", "sft.learning_rate")]
    text = ce.render(rows, "experiments.png")
    header = next(line for line in text.splitlines() if line.startswith("| experiment"))
    assert header.split(" | ")[1:3] == ["model", "sft.learning_rate"]
    assert "general USR benign" in header and "general capability_mc acc" in header
    qwen = next(line for line in text.splitlines() if line.startswith("| exp-qwen"))
    assert "| qwen |" in qwen and "0.60 [0.50, 0.70]" in qwen
    lr = next(line for line in text.splitlines() if line.startswith("| exp-lr"))
    assert "| 0.0001 |" in lr and "| - |" in lr  # no report yet: dashes, no crash
    assert "general_falsereject_minus_general_usr_benign" in text
    inp = tmp_path / "show.json"
    inp.write_text(json.dumps(FAKE))
    out = tmp_path / "experiments.md"
    assert ce.main(["--input", str(inp), "--out", str(out)]) == 0
    assert out.read_text() == text
    assert (tmp_path / "experiments.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_two_real_tiny_experiments(tmp_path):
    """A two-stage toy DVC project, two queued-and-run experiments with `-S`: the script reads
    the real `dvc exp show --json` and names the differing option."""
    bin_dir = ROOT / ".venv/bin"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DVC_NO_ANALYTICS": "1", "HOME": str(tmp_path),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    repo = tmp_path / "toy"
    (repo / "reports/eval").mkdir(parents=True)
    (repo / "params.yaml").write_text("model:\n  name: small\nsft:\n  name: lora\n  lr: 1\n")
    (repo / "make.py").write_text(
        "import json, yaml\np = yaml.safe_load(open('params.yaml'))\n"
        "v = 0.5 if p['model']['name'] == 'small' else 0.75\n"
        "json.dump({'general_usr_benign': v, 'general_usr_toxic': 0.8}, "
        "open('reports/eval/metrics.json', 'w'))\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  report:\n    cmd: python make.py\n    deps: [make.py]\n"
        "    params: [model, sft]\n    metrics:\n      - reports/eval/metrics.json:\n"
        "          cache: false\n")
    def sh(*cmd):
        return subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True,
                              text=True).stdout
    sh("git", "init", "-q", "-b", "main")
    sh("dvc", "init", "-q")
    sh("dvc", "repro", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "base")
    sh("dvc", "exp", "run", "-q", "-n", "exp-big", "-S", "model.name=big")
    sh("dvc", "exp", "run", "-q", "-n", "exp-lr", "-S", "sft.lr=2")
    show = json.loads(sh("dvc", "exp", "show", "--json"))
    rows = ce.experiments(show)
    names = [r["name"] for r in rows]
    assert {"exp-big", "exp-lr"} <= set(names)
    cols = ce.differing_columns(rows)
    assert ("model", "model.name") in cols and ("sft.lr", "sft.lr") in cols
    text = ce.render(rows, None)
    big = next(line for line in text.splitlines() if line.startswith("| exp-big"))
    assert "| big |" in big and "0.75" in big
