"""The whole composed params.yaml is validated before any stage runs (stage `config`), so an
invalid value fails a run even when the targeted stage does not read that param."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from repo_copy import copy_repo, git_env, git_init

ROOT = Path(__file__).resolve().parents[1]
VALID = "reports/config/valid.json"


def test_every_stage_depends_on_the_config_check():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    check = stages["config"]
    assert check["params"] == [{"params.yaml": None}]  # every param, not some sections
    assert [next(iter(o)) if isinstance(o, dict) else o for o in check["outs"]] == [VALID]
    for name, st in stages.items():
        if name != "config":
            deps = st.get("do", st)["deps"]
            assert VALID in deps, f"stage {name} does not depend on {VALID}"


def test_config_stage_rejects_a_bad_value_of_a_section_no_stage_reads(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("seed: 0", "seed: abc", 1)
    (tmp_path / "params.yaml").write_text(text)
    proc = subprocess.run([str(ROOT / ".venv/bin/python"), "stages/config.py", "--params",
                           str(tmp_path / "params.yaml"), "--out", str(tmp_path / "valid.json")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "run.seed" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "valid.json").exists()


@pytest.mark.slow
def test_exp_run_with_an_invalid_param_fails_even_for_a_stage_that_does_not_read_it(tmp_path):
    repo = tmp_path / "repo"
    copy_repo(repo)
    env = git_env(tmp_path / "llmcache")
    git_init(repo, env)

    def dvc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(ROOT / ".venv/bin/dvc"), *args], cwd=repo, env=env,
                              capture_output=True, text=True)

    first = dvc("repro", "seeds")
    assert first.returncode == 0, first.stderr
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "seeds"], cwd=repo, env=env, check=True)
    bad = dvc("exp", "run", "-S", "run.seed=abc", "seeds")  # `seeds` does not read `run`
    assert bad.returncode != 0, bad.stdout + bad.stderr
    assert "run.seed" in bad.stdout + bad.stderr
    good = dvc("exp", "run", "-S", "run.seed=1", "seeds")  # valid: seeds itself is not rerun
    assert good.returncode == 0, good.stderr
    assert "Stage 'seeds' didn't change" in good.stdout
