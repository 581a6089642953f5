"""Stage `structure` for real on the embedded responder (smoke sizes): outputs, export, cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from falsereject.core.compose import compose
from falsereject.responses.export import hf_features

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests/fixtures"


def run_stage(tmp_path: Path, params: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "stages/structure.py", "--params", str(params),
         "--train", str(FIX / "generate_train.jsonl"), "--test", str(FIX / "generate_test.jsonl"),
         "--prompts", "prompts/structure/responder_v1.yaml",
         "--out", str(tmp_path / "structure/train.jsonl"),
         "--dropped", str(tmp_path / "structure/dropped.jsonl"),
         "--export-dir", str(tmp_path / "export"), "--reports", str(tmp_path / "reports")],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_structure_smoke_on_the_embedded_model(tmp_path):
    import datasets

    params = tmp_path / "params.yaml"
    params.write_text(compose(["experiment=smoke"]))
    proc = run_stage(tmp_path, params)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert m["train_selected"] == 3 and m["train_kept"] + m["train_dropped"] == 3
    assert m["train_kept"] >= 1, m  # the checker must let the embedded model's answers through
    kept = [json.loads(x) for x in (tmp_path / "structure/train.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == sorted(r["id"] for r in kept)
    prov = kept[0]["provenance"]["structure"]
    assert prov["responder_model"] == "local/smollm2" and prov["attempts"] >= 7
    assert len(kept[0]["instruct_response"].split("\n\n")) >= 4
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "export/train.parquet"),
                               split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.features == hf_features("train") and ds.num_rows == m["train_kept"]
    ledger = json.loads((tmp_path / "reports/llm_ledger.json").read_text())
    assert ledger["requests"] == m["llm_calls"]

    before = (tmp_path / "export/train.jsonl").read_bytes()
    proc = run_stage(tmp_path, params)  # same cache: no model call, identical bytes
    assert proc.returncode == 0, proc.stderr[-3000:]
    ledger = json.loads((tmp_path / "reports/llm_ledger.json").read_text())
    assert ledger["api_calls"] == 0 and ledger["cache_hits"] == m["llm_calls"]
    assert (tmp_path / "export/train.jsonl").read_bytes() == before
