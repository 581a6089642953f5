"""End to end: the README's own entry point, `make repro` (on the smoke bundle through the
OVERRIDES make variable), in a temporary copy of the repo from a plain shell: no activated venv,
`.venv/bin` not on PATH, and another `python` first on PATH. On the embedded model every declared
output exists and validates, metrics are finite, a second `make repro` changes nothing, a forced
re-run gives identical tracked metrics, and a hub student fails fast offline without touching
data stages.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
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


def plain_shell_env(tmp: Path, llm_cache: Path) -> dict[str, str]:
    """What a new user's shell looks like: no venv on PATH, and `python` is another interpreter
    (the base Python, which does not have this project installed)."""
    fake_bin = tmp / "other-python-bin"
    fake_bin.mkdir(exist_ok=True)
    other = Path(sys.base_prefix) / "bin" / "python3"
    (fake_bin / "python").unlink(missing_ok=True)
    (fake_bin / "python").symlink_to(other)
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "FR_MODEL_CACHE_DIR", "FR_EMBEDDING_CACHE_DIR",
            "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(PATH=f"{fake_bin}:/usr/local/bin:/usr/bin:/bin", DVC_NO_ANALYTICS="1",
               FR_LLM_CACHE_DIR=str(llm_cache))
    assert str(BIN) not in env["PATH"]
    return env


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    dst = tmp_path_factory.mktemp("e2e") / "repo"
    copy_repo(dst)  # outputs of the source checkout must not leak in: start from nothing
    # the installed environment is reused (setup.sh's stamp matches), not installed again
    (dst / ".venv").symlink_to(ROOT / ".venv")
    env = git_env(dst.parent / "llmcache")
    for var in [k for k in env if k.startswith("FR_MODEL_DIR_")]:
        env.pop(var)
    git_init(dst, env)
    plain = plain_shell_env(dst.parent, dst.parent / "llmcache")
    probe = sh(["python", "-c", "import falsereject"], dst, plain, check=False)
    assert probe.returncode != 0, "the plain shell's python must not see the project"
    run = sh(["make", "repro", "OVERRIDES=experiment=smoke"], dst, plain)
    return dst, env, run, plain


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
    dst, _, _, _ = repo
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
    dst, _, _, _ = repo
    metric_files = list((dst / "reports").rglob("*.json"))
    assert metric_files
    for f in metric_files:
        for x in finite_numbers(json.loads(f.read_text())):
            assert math.isfinite(x), f"{f}: non-finite metric {x}"


def test_seeds_and_probe_ran_through_the_embedded_model(repo):
    dst, _, _, _ = repo
    seeds = [json.loads(line) for line in (dst / "data/seeds/seeds.jsonl").read_text().splitlines()]
    assert len(seeds) == 3
    assert set(seeds[0]) == {"id", "prompt", "category", "category_text", "source"}
    probe = json.loads((dst / "data/probe/probe.json").read_text())
    assert probe["probes"][0]["model"] == "local/smollm2"
    assert probe["probes"][0]["response"].strip()
    ledger = json.loads((dst / "reports/probe/llm_ledger.json").read_text())
    assert ledger["api_calls"] >= 1


def test_second_repro_changes_nothing(repo):
    dst, _, _, plain = repo
    before = {p: p.stat().st_mtime_ns for p in declared_outputs(dst) if p.is_file()}
    proc = sh(["make", "repro", "OVERRIDES=experiment=smoke"], dst, plain)
    assert "up to date" in proc.stdout, proc.stdout
    assert "Running stage" not in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in before} == before


def tracked_metrics(repo: Path) -> dict[str, str]:
    proc = subprocess.run([str(BIN / "dvc"), "metrics", "show", "--json"], cwd=repo,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_a_forced_rerun_gives_identical_tracked_metrics(repo):
    """Timings live in timing.json, not in metrics: two identical runs, identical metrics."""
    dst, env, _, _ = repo
    before = tracked_metrics(dst)
    assert before
    sh(["dvc", "repro", "-f"], dst, env)
    assert tracked_metrics(dst) == before


def test_hub_student_fails_fast_offline_without_rerunning_data_stages(repo):
    dst, env, _, _ = repo
    env = {**env, "HF_HUB_OFFLINE": "1"}
    proc = sh(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "model=qwen"], dst, env,
              check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "not available offline" in out and "FR_MODEL_DIR_QWEN" in out
    for data_stage in ("seeds", "extract", "generate", "structure"):
        assert f"Running stage '{data_stage}'" not in out
