"""Guarantee: bad input or environment stops a stage with one clear message (exit 2, no
traceback) naming the file/line/key/variable, before any LLM call, leaving no partial output.

Unit-level checks of the same errors live beside their modules (test_seeds, test_config,
test_local_model); here each case goes through a stage's real entry point.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from stage_cli import load_stage

from falsereject.core import stage
from falsereject.core.compose import compose
from falsereject.core.compose import main as compose_main
from falsereject.core.config import ConfigError
from falsereject.llm import LLMClient
from falsereject.llm.cache import CacheError, DiskCache
from falsereject.testing.server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
GOOD_ROW = '{"id": "a", "prompt": "how do I pick a lock", "category": 1}\n'


def run_entry(main, argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """A stage's main() through stage.entrypoint, in-process: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["stage", *argv])
    with pytest.raises(SystemExit) as info:
        stage.entrypoint(main)
    return info.value.code, capsys.readouterr().err


# --- seeds: malformed line, empty file, invalid UTF-8, unreachable hub dataset ---------------

@pytest.mark.parametrize(("content", "message"), [
    (GOOD_ROW + '{"id": "b", "prompt": "x"\n', "seeds.jsonl:2: malformed JSON"),
    ("", "seeds.jsonl: no seed rows"),
    ("\n\n", "seeds.jsonl: no seed rows"),
    (GOOD_ROW.encode() + b'{"id": "b", "prompt": "caf\xe9", "category": 1}\n',
     "seeds.jsonl:2: invalid UTF-8"),
])
def test_seeds_stage_bad_file(tmp_path, monkeypatch, capsys, content, message):
    src = tmp_path / "seeds.jsonl"
    src.write_bytes(content if isinstance(content, bytes) else content.encode())
    params = compose([f"seeds.path={src}"], ROOT / "conf")
    _assert_seeds_stage_fails(tmp_path, params, message, monkeypatch, capsys)


def test_seeds_stage_unreachable_hub_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    params = compose(["seeds.source=hf", "seeds.hf_id=no-such-org/no-such-dataset",
                      "seeds.hf_revision=0123456789abcdef0123456789abcdef01234567",
                      "seeds.hf_split=train"], ROOT / "conf")
    _assert_seeds_stage_fails(tmp_path, params, "no-such-org/no-such-dataset@0123456789ab",
                              monkeypatch, capsys)


def _assert_seeds_stage_fails(tmp_path: Path, params: str, message: str, monkeypatch,
                              capsys) -> None:
    seeds = load_stage("seeds")

    pfile = tmp_path / "params.yaml"
    pfile.write_text(params)
    out = tmp_path / "out"
    code, err = run_entry(seeds.main, ["--params", str(pfile), "--out", str(out / "s.jsonl"),
                                       "--report", str(out / "summary.json")],
                          monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error:") and message in err
    assert not out.exists() or not any(out.iterdir())


# --- config: unknown key, unknown group option, wrong type (the `-S` override path) --------

@pytest.mark.parametrize(("override", "message"), [
    ("probe.no_such_knob=1", "no_such_knob"),
    ("llm=no_such_option", "no_such_option"),
    ("probe.max_tokens=lots", "probe.max_tokens"),
    ("run.seed=[1,2]", "run.seed"),
])
def test_compose_rejects_bad_override_and_keeps_params(tmp_path, capsys, override, message):
    out = tmp_path / "params.yaml"
    code = compose_main([override, "--out", str(out), "--conf-dir", str(ROOT / "conf")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and message in err
    assert not out.exists()


# --- LLM environment: missing key, unwritable cache, bad throughput settings -----------------

@pytest.fixture
def vllm_params(tmp_path) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(compose(["llm=vllm"], ROOT / "conf"))
    return p


def test_missing_api_key_names_the_variable_before_any_call(vllm_params, tmp_path,
                                                             monkeypatch, capsys):
    probe = load_stage("probe")

    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    out = tmp_path / "probe" / "probe.json"
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("VLLM_API_BASE", srv.base_url)
        code, err = run_entry(probe.main, ["--params", str(vllm_params), "--out", str(out),
                                           "--ledger-dir", str(tmp_path / "rep")],
                              monkeypatch, capsys)
        assert srv.request_count == 0
    assert code == 2
    assert "VLLM_API_KEY" in err and "openai/Qwen/Qwen2.5-7B-Instruct" in err
    assert not out.exists() and not (tmp_path / "rep").exists()


def test_unwritable_cache_dir_is_named_before_any_call(vllm_params, tmp_path, monkeypatch,
                                                       capsys):
    probe = load_stage("probe")

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("FR_LLM_CACHE_DIR", str(blocker / "llm"))
    monkeypatch.setenv("VLLM_API_KEY", "sk-test")
    out = tmp_path / "probe" / "probe.json"
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("VLLM_API_BASE", srv.base_url)
        code, err = run_entry(probe.main, ["--params", str(vllm_params), "--out", str(out),
                                           "--ledger-dir", str(tmp_path / "rep")],
                              monkeypatch, capsys)
        assert srv.request_count == 0
    assert code == 2
    assert "FR_LLM_CACHE_DIR" in err and str(blocker / "llm") in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cache_that_breaks_mid_run_is_a_clear_error(tmp_path):
    cache = DiskCache(tmp_path / "c")
    (tmp_path / "c" / "ab").write_text("a file where a fan-out directory belongs")
    with pytest.raises(CacheError, match="FR_LLM_CACHE_DIR"):
        cache.put("ab" + "0" * 62, {"text": "x"})
    assert cache.get("ab" + "0" * 62) is None


@pytest.mark.parametrize(("var", "value"), [("FR_LLM_CONCURRENCY", "many"),
                                            ("FR_LLM_TIMEOUT_S", "-1")])
def test_bad_throughput_setting_names_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        LLMClient("x")


@pytest.mark.slow
@pytest.mark.parametrize(("override", "message", "composes"), [
    ("probe.no_such_knob=1", "no_such_knob", False),
    ("llm=no_such_option", "no_such_option", False),
    ("probe.max_tokens=lots", "probe.max_tokens", True),
])
def test_bad_dvc_exp_run_override_fails_clearly(tmp_path, override, message, composes):
    """The `dvc exp run -S` path: Hydra rejects unknown keys and options before any stage
    runs; a wrongly typed value is composed, and the first stage to start (every stage
    validates the whole params.yaml) stops on it, naming the key, before writing anything."""
    from repo_copy import copy_repo, git_env, git_init

    repo = tmp_path / "repo"
    copy_repo(repo)
    env = git_env(tmp_path / "llmcache")
    git_init(repo, env)
    proc = subprocess.run(["dvc", "exp", "run", "-S", override], cwd=repo, env=env,
                          capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert message in log
    ran = [line for line in log.splitlines() if line.startswith("Running stage")]
    assert len(ran) == (1 if composes else 0), ran
    data = repo / "data"
    assert not data.exists() or not [p for p in data.rglob("*") if p.is_file()]
