"""Guarantee: a run killed with SIGKILL midway, then re-run, makes only the calls that had not
completed (counted at the server) and ends byte-identical to an uninterrupted run; the cache
holds every call that completed before the kill, and the killed run left no partial output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from falsereject.testserver import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
ROWS, CONCURRENCY = 60, 4

# The LLM part of a stage, in its own process: fan out, then write the output atomically.
DRIVER = """
import sys
from falsereject.config import RoleModel
from falsereject.io import write_jsonl
from falsereject.llm import LLMClient

role = RoleModel(model="openai/test-model", temperature=0.7, top_p=1.0, max_tokens=16,
                 api_base_env="FR_TEST_API_BASE", api_key_env="FR_TEST_API_KEY")
convs = [[{"role": "user", "content": f"row {i}"}] for i in range(int(sys.argv[2]))]
results = LLMClient("resume").chat_many(role, convs, seed=11)
write_jsonl(sys.argv[1], [{"row": i, "text": r.text} for i, r in enumerate(results)])
"""


def start(out: Path, cache: Path, srv: FakeOpenAIServer) -> subprocess.Popen:
    env = {**os.environ, "FR_LLM_CACHE_DIR": str(cache), "FR_TEST_API_BASE": srv.base_url,
           "FR_TEST_API_KEY": "sk-test", "FR_LLM_CONCURRENCY": str(CONCURRENCY)}
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(out), str(ROWS)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def cache_entries(cache: Path) -> int:
    return sum(1 for _ in cache.rglob("*.json"))


def wait_until(pred, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]


def test_sigkill_then_rerun_makes_only_missing_calls(tmp_path):
    kill_after = ROWS // 3
    out, cache = tmp_path / "resumed.jsonl", tmp_path / "cache"
    with FakeOpenAIServer(latency_s=0.05) as srv:
        proc = start(out, cache, srv)
        wait_until(lambda: srv.completed >= kill_after or proc.poll() is not None)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        sent, entries = srv.completed, cache_entries(cache)
        assert not out.exists() and not list(tmp_path.glob(".resumed*"))  # nothing partial
        # flushed per call: at most the calls in flight at the kill are lost
        assert sent - CONCURRENCY <= entries <= sent and entries < ROWS

        before = srv.request_count
        finish(start(out, cache, srv))
        assert srv.request_count - before == ROWS - entries

        fresh_out = tmp_path / "uninterrupted.jsonl"
        before = srv.request_count
        finish(start(fresh_out, tmp_path / "fresh-cache", srv))
        assert srv.request_count - before == ROWS
    assert out.read_bytes() == fresh_out.read_bytes()
