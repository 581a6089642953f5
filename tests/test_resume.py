"""Guarantee: the `extract` stage killed with SIGKILL midway, then re-run, makes only the calls
that had not completed (counted at the server) and ends byte-identical to an uninterrupted run;
the cache holds every call that completed before the kill, and the killed run left no output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from server_roles import extract_responder
from stage_cli import load_stage

from falsereject.core.compose import compose
from falsereject.core.io import read_jsonl
from falsereject.core.taxonomy import CATEGORIES
from falsereject.testing.server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 4
OUTPUTS = ("subgraphs.jsonl", "graph.json")  # the data; reports carry wall times


@pytest.fixture
def inputs(tmp_path) -> Path:
    seeds = [{**s, "category_text": CATEGORIES[s["category"]], "source": "test"}
             for s in read_jsonl(ROOT / "resources/seeds.jsonl")[:20]]
    (tmp_path / "seeds.jsonl").write_text("".join(json.dumps(s) + "\n" for s in seeds))
    (tmp_path / "params.yaml").write_text(
        compose(["llm=vllm", "extract.k=2", "extract.retries=1"], ROOT / "conf"))
    return tmp_path


def stage_env(cache: Path, srv: FakeOpenAIServer) -> dict[str, str]:
    return {"FR_LLM_CACHE_DIR": str(cache), "VLLM_API_BASE": srv.base_url,
            "VLLM_API_KEY": "sk-test", "FR_LLM_CONCURRENCY": str(CONCURRENCY)}


def flags(inputs: Path, out: Path) -> list[str]:
    return ["--params", str(inputs / "params.yaml"), "--seeds", str(inputs / "seeds.jsonl"),
            "--prompt", "prompts/extract_v1.yaml", "--vote-prompt", "prompts/vote_v1.yaml",
            "--graph", str(out / "graph.json"), "--subgraphs", str(out / "subgraphs.jsonl"),
            "--reports-dir", str(out / "reports")]


def start(inputs: Path, out: Path, cache: Path, srv: FakeOpenAIServer) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "stages/extract.py", *flags(inputs, out)],
                            cwd=ROOT, env={**os.environ, **stage_env(cache, srv)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]


def cache_entries(cache: Path) -> int:
    """Answers in the cache; a write the kill cut short leaves a temp file, not an entry."""
    return sum(1 for p in cache.rglob("*.json") if not p.name.startswith(".tmp-"))


def test_sigkill_then_rerun_makes_only_missing_calls(inputs, tmp_path, monkeypatch):
    extract = load_stage("extract")

    resumed, cache = tmp_path / "resumed", tmp_path / "cache"
    with FakeOpenAIServer(responder=extract_responder, latency_s=0.05) as srv:
        # uninterrupted reference run (in-process, to save an interpreter start)
        with monkeypatch.context() as m:
            for var, value in stage_env(tmp_path / "ref-cache", srv).items():
                m.setenv(var, value)
            m.chdir(ROOT)
            m.setattr(sys, "argv", ["extract", *flags(inputs, tmp_path / "reference")])
            extract.main()
        total = srv.request_count
        assert total >= 40

        proc = start(inputs, resumed, cache, srv)
        deadline = time.monotonic() + 120
        while srv.completed < total + total // 3 and proc.poll() is None:
            assert time.monotonic() < deadline, "the stage never got going"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        srv.wait_until_quiet()  # a request the killed run had written can still arrive
        sent, entries = srv.completed - total, cache_entries(cache)
        assert not resumed.exists() or not any(resumed.rglob("*.json*"))  # nothing partial
        # flushed as each call completes: only the calls in flight at the kill are lost
        assert sent - CONCURRENCY <= entries <= sent and 0 < entries < total

        before = srv.request_count
        finish(start(inputs, resumed, cache, srv))
        assert srv.request_count - before == total - entries
    for name in OUTPUTS:
        assert (resumed / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()
    ledger = json.loads((resumed / "reports" / "llm_ledger.json").read_text())
    assert ledger["cache_hits"] == entries and ledger["api_calls"] == total - entries


CACHED_CALL = """
import json, os, sys
from falsereject.core.config import RoleModel
from falsereject.llm import LLMClient
role = RoleModel(model="openai/test-model", temperature=0.0, top_p=1.0, max_tokens=16,
                 api_base_env="VLLM_API_BASE", api_key_env="VLLM_API_KEY")
client = LLMClient("cachetest")
r = client.chat_many(role, [[{"role": "user", "content": "hello there"}]])[0]
print(json.dumps({"text": r.text, "cached": r.cached, "litellm": "litellm" in sys.modules,
                  "api_calls": client.ledger.summary()["api_calls"]}))
"""


def test_an_all_cached_run_never_imports_litellm(tmp_path):
    """A re-run whose answers are all cached does not pay LiteLLM's ~5 s import."""
    with FakeOpenAIServer() as srv:
        env = {**os.environ, **stage_env(tmp_path / "cache", srv)}
        runs = [json.loads(subprocess.run([sys.executable, "-c", CACHED_CALL], cwd=ROOT,
                                          env=env, capture_output=True, text=True,
                                          check=True, timeout=120).stdout.splitlines()[-1])
                for _ in range(2)]
        assert srv.request_count == 1
    assert runs[0]["litellm"] and not runs[0]["cached"] and runs[0]["api_calls"] == 1
    assert not runs[1]["litellm"] and runs[1]["cached"] and runs[1]["api_calls"] == 0
    assert runs[0]["text"] == runs[1]["text"]
