"""Machine settings (`FR_*`) read in one validated place; default caches shared by every
experiment of a repository; robust text input (byte-order mark, a directory for a file)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from repo_copy import copy_repo, git_env, git_init

from falsereject.core import settings
from falsereject.core.config import ConfigError
from falsereject.core.io import InputError, read_csv, read_jsonl, write_json
from falsereject.core.settings import Settings, main_repo_root

ROOT = Path(__file__).resolve().parents[1]
NUMERIC = [name for name, f in Settings.model_fields.items()
           if "int" in str(f.annotation) or "float" in str(f.annotation)]


# --- one place, validated ------------------------------------------------------------------


@pytest.mark.parametrize("field", NUMERIC)
@pytest.mark.parametrize("value", ["abc", "-1"])
def test_a_bad_value_of_any_variable_names_the_variable(field, value, monkeypatch):
    var = "FR_" + field.upper()
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=f"environment variable {var}='{value}'"):
        settings.get()


def test_defaults_empty_values_and_log_level(monkeypatch):
    for var in [v for v in os.environ if v.startswith("FR_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("FR_LLM_CONCURRENCY", "")  # empty counts as unset
    monkeypatch.setenv("FR_LOG_LEVEL", "debug")
    s = settings.get()
    assert (s.llm_concurrency, s.llm_max_retries, s.local_batch_size, s.log_level) == \
        (16, 4, 32, "DEBUG")
    monkeypatch.setenv("FR_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match="FR_LOG_LEVEL='loud'"):
        settings.get()


def test_a_stage_checks_every_variable_at_start_even_one_it_does_not_read(tmp_path):
    env = {**os.environ, "FR_LLM_CONCURRENCY": "many"}  # `config` makes no LLM call
    proc = subprocess.run([sys.executable, "stages/config.py", "--out",
                           str(tmp_path / "valid.json")], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")] == [
        "error: environment variable FR_LLM_CONCURRENCY='many': Input should be a valid "
        "integer, unable to parse string as an integer"]
    assert not (tmp_path / "valid.json").exists()


def test_unknown_fr_variables_are_reported(monkeypatch):
    monkeypatch.setenv("FR_LLM_CONCURENCY", "4")  # typo
    monkeypatch.setenv("FR_MODEL_DIR_QWEN", "/x")  # named by conf/model, not a typo
    unknown = settings.unknown_variables()
    assert "FR_LLM_CONCURENCY" in unknown and "FR_MODEL_DIR_QWEN" not in unknown


def _env_reads(tree: ast.AST, consts: dict[str, str]) -> list[str]:
    """Names of environment variables read with os.environ / os.getenv in a module."""
    names = []
    for node in ast.walk(tree):
        arg = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if (f.attr in ("get", "setdefault", "pop") and isinstance(f.value, ast.Attribute)
                    and f.value.attr == "environ") or f.attr == "getenv":
                arg = node.args[0] if node.args else None
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "environ":
            arg = node.slice
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            names.append(arg.value)
        elif isinstance(arg, ast.Name) and arg.id in consts:
            names.append(consts[arg.id])
    return names


def test_no_fr_variable_is_read_outside_core_settings():
    offenders = []
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").glob("*.py")]:
        if path.name == "settings.py" and path.parent.name == "core":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        consts = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                  and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                  for t in n.targets if isinstance(t, ast.Name)}
        offenders += [f"{path.relative_to(ROOT)}: {v}" for v in _env_reads(tree, consts)
                      if v.startswith("FR_")]
    assert offenders == []


# --- caches shared by temporary and queued experiments -------------------------------------


def test_main_repo_root_of_a_dvc_temp_experiment(tmp_path):
    repo = tmp_path / "repo"
    for sub in (".dvc/tmp/exps/tmpab12cd", ".dvc/tmp/exps/standalone/tmpzz/stages"):
        (repo / sub).mkdir(parents=True)
        assert main_repo_root(repo / sub) == repo.resolve()
    assert main_repo_root(repo) == repo.resolve()
    assert main_repo_root(repo / ".dvc") == (repo / ".dvc").resolve()  # not an experiment


def test_default_caches_resolve_to_the_main_repository(tmp_path, monkeypatch):
    from falsereject.llm.cache import DiskCache
    from falsereject.llm.local.engine import model_cache_root

    repo = tmp_path / "repo"
    exp = repo / ".dvc/tmp/exps/tmp1234"
    exp.mkdir(parents=True)
    monkeypatch.chdir(exp)
    for var in ("FR_LLM_CACHE_DIR", "FR_MODEL_CACHE_DIR", "FR_BENCHMARK_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    main = repo.resolve() / ".cache"
    assert DiskCache().root == main / "llm"
    assert model_cache_root() == main / "models"
    assert settings.get().cache_dir("benchmarks") == main / "benchmarks"
    monkeypatch.setenv("FR_LLM_CACHE_DIR", str(tmp_path / "mine"))  # the variable still wins
    monkeypatch.setenv("FR_MODEL_CACHE_DIR", str(tmp_path / "models"))
    assert DiskCache().root == tmp_path / "mine"
    assert model_cache_root() == tmp_path / "models"


@pytest.mark.slow
def test_a_temp_experiment_fills_the_main_repository_llm_cache(tmp_path):
    """The real thing: `dvc exp run --temp probe` runs in .dvc/tmp/exps/...; its LLM answers
    land in the main copy's .cache/llm, so the next experiment does not pay for them again."""
    repo = tmp_path / "repo"
    copy_repo(repo)
    env = git_env(tmp_path / "unused")
    env.pop("FR_LLM_CACHE_DIR")
    env.pop("FR_MODEL_CACHE_DIR", None)
    git_init(repo, env)
    (repo / ".cache").mkdir()
    (repo / ".cache/models").symlink_to(ROOT / ".cache/models")  # no second dequantization
    proc = subprocess.run([str(ROOT / ".venv/bin/dvc"), "exp", "run", "--temp", "probe"],
                          cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    entries = list((repo / ".cache/llm").rglob("*.json"))
    assert entries, "the temp experiment did not use the main repository's LLM cache"
    assert any(json.loads(p.read_text()).get("model") == "local/smollm2" for p in entries)
    assert not (repo / "data/probe/probe.json").exists()  # it really ran elsewhere


# --- text input ------------------------------------------------------------------------------


def test_a_csv_with_a_byte_order_mark_keeps_its_first_column(tmp_path):
    p = tmp_path / "seeds.csv"
    p.write_bytes("id,question,cat\nx1,How do locks work?,2\n".encode("utf-8-sig"))
    (line, row), = read_csv(p)
    assert row == {"id": "x1", "question": "How do locks work?", "cat": "2"}
    j = tmp_path / "rows.jsonl"
    j.write_bytes('{"id": "a"}\n'.encode("utf-8-sig"))
    assert read_jsonl(j) == [{"id": "a"}]


def test_seeds_from_a_bom_csv_keep_their_ids(tmp_path):
    from falsereject.core.config import SeedsConfig
    from falsereject.generation.seeds import load_seeds

    p = tmp_path / "seeds.csv"
    p.write_bytes("id,q,c\nx2,second,7\nx1,first,7\n".encode("utf-8-sig"))
    cfg = SeedsConfig(name="t", source="csv", path=str(p), hf_id=None, hf_revision=None,
                      hf_split=None, columns={"id": "id", "prompt": "q", "category": "c"},
                      category_format="id", max_per_category=None, max_seeds=None)
    assert [r["id"] for r in load_seeds(cfg)] == ["x1", "x2"]


def test_a_directory_where_a_file_is_expected_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path}: is a directory, expected a file"):
        read_jsonl(tmp_path)
    with pytest.raises(InputError, match="is a directory"):
        write_json(tmp_path, {})


def test_a_stage_given_a_directory_exits_2_with_one_error_line(tmp_path):
    (tmp_path / "seeds.jsonl").mkdir()
    proc = subprocess.run([sys.executable, "stages/extract.py", "--seeds",
                           str(tmp_path / "seeds.jsonl"), "--prompt", "x", "--vote-prompt", "x",
                           "--graph", str(tmp_path / "g.json"), "--subgraphs",
                           str(tmp_path / "s.jsonl"), "--reports-dir", str(tmp_path / "r")],
                          cwd=ROOT, capture_output=True, text=True)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert errors == [f"error: {tmp_path / 'seeds.jsonl'}: is a directory, expected a file"]
    params_dir = tmp_path / "params"
    params_dir.mkdir()
    proc = subprocess.run([sys.executable, "stages/config.py", "--params", str(params_dir),
                           "--out", str(tmp_path / "v.json")], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "is a directory" in proc.stderr
    assert "Traceback" not in proc.stderr
