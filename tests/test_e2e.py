"""End to end: the real `dvc exp run -S experiment=smoke` in a temporary copy of the repo, on
the embedded model; every declared output exists and validates, metrics are finite, a second
`dvc repro` changes nothing, and a hub student fails fast offline without touching data stages.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import yaml
from repo_copy import copy_repo, git_env, git_init

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"

pytestmark = pytest.mark.slow


def sh(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    dst = tmp_path_factory.mktemp("e2e") / "repo"
    copy_repo(dst)  # outputs of the source checkout must not leak in: start from nothing
    env = git_env(dst.parent / "llmcache")
    for var in [k for k in env if k.startswith("FR_MODEL_DIR_")]:
        env.pop(var)
    git_init(dst, env)
    run = sh(["dvc", "exp", "run", "-S", "experiment=smoke"], dst, env)
    return dst, env, run


def declared_outputs(repo: Path) -> list[Path]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    paths = []
    for st in lock["stages"].values():
        paths += [repo / o["path"] for o in st.get("outs", [])]
    return paths


def finite_numbers(obj) -> list[float]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [obj]
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in finite_numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in finite_numbers(v)]
    return []


def test_smoke_pipeline_produces_every_declared_output(repo):
    dst, _, _ = repo
    params = yaml.safe_load((dst / "params.yaml").read_text())
    assert params["experiment"]["name"] == "smoke"
    outs = declared_outputs(dst)
    assert len(outs) >= 3
    missing = [str(p.relative_to(dst)) for p in outs if not p.exists()]
    assert not missing, f"declared outputs missing: {missing}"
    for p in outs:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        assert files, f"{p} is empty"
        for f in files:
            if f.suffix == ".jsonl":
                rows = [json.loads(line) for line in f.read_text().splitlines() if line]
                assert all(isinstance(r, dict) for r in rows)
            elif f.suffix == ".json":
                json.loads(f.read_text())


def test_metrics_are_finite(repo):
    dst, _, _ = repo
    metric_files = list((dst / "reports").rglob("*.json"))
    assert metric_files
    for f in metric_files:
        for x in finite_numbers(json.loads(f.read_text())):
            assert math.isfinite(x), f"{f}: non-finite metric {x}"


def test_seeds_and_probe_ran_through_the_embedded_model(repo):
    dst, _, _ = repo
    seeds = [json.loads(line) for line in (dst / "data/seeds/seeds.jsonl").read_text().splitlines()]
    assert len(seeds) == 3
    assert set(seeds[0]) == {"id", "prompt", "category", "category_text", "source"}
    probe = json.loads((dst / "data/probe/probe.json").read_text())
    assert probe["probes"][0]["model"] == "local/smollm2"
    assert probe["probes"][0]["response"].strip()
    ledger = json.loads((dst / "reports/probe/llm_ledger.json").read_text())
    assert ledger["api_calls"] >= 1


def test_second_repro_changes_nothing(repo):
    dst, env, _ = repo
    before = {p: p.stat().st_mtime_ns for p in declared_outputs(dst) if p.is_file()}
    proc = sh(["dvc", "repro"], dst, env)
    assert "up to date" in proc.stdout, proc.stdout
    assert "Running stage" not in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_hub_student_fails_fast_offline_without_rerunning_data_stages(repo):
    dst, env, _ = repo
    env = {**env, "HF_HUB_OFFLINE": "1"}
    proc = sh(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "model=qwen"], dst, env,
              check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "not available offline" in out and "FR_MODEL_DIR_QWEN" in out
    for data_stage in ("seeds", "extract", "generate", "structure"):
        assert f"Running stage '{data_stage}'" not in out
