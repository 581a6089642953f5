"""Guarantee: an API key in the environment never reaches params.yaml, dvc.lock, reports/,
data/, the LLM cache, DVC's own files, git history or logs.

A full `dvc exp run -S experiment=smoke -S llm=vllm` in a temp copy of the repo, every hosted
role pointed at the loopback test server, with a sentinel key and debug logging on; then every
byte the run left behind is searched for the sentinel.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from server_roles import pipeline_responder

from falsereject.testserver import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
# made at run time, so not even this file contains it
SENTINEL = "sk-SENTINEL-" + secrets.token_hex(16)

pytestmark = pytest.mark.slow


def copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    for d in ("data", "models", "reports", "dvclive"):
        shutil.rmtree(dst / d, ignore_errors=True)
    (dst / "dvc.lock").unlink(missing_ok=True)


def files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            hits.append(str(path))
    return hits


def test_sentinel_key_leaves_no_trace(tmp_path):
    repo, cache = tmp_path / "repo", tmp_path / "llmcache"
    copy_repo(repo)
    with FakeOpenAIServer(responder=pipeline_responder) as srv:
        env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}",
               "VLLM_API_KEY": SENTINEL, "VLLM_API_BASE": srv.base_url,
               "FR_LLM_CACHE_DIR": str(cache), "FR_LOG_LEVEL": "DEBUG",
               "LITELLM_LOG": "DEBUG", "DVC_NO_ANALYTICS": "1",
               "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                    ["git", "commit", "-qm", "copy"]):
            subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
        proc = subprocess.run(
            # two rounds: the role-playing discriminator accepts only a revised prompt
            ["dvc", "exp", "run", "-v", "-S", "experiment=smoke", "-S", "llm=vllm",
             "-S", "generate.max_iterations=2"],
            cwd=repo, env=env, capture_output=True, text=True,
        )
        calls = srv.request_count
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, "\n".join(
        line for line in log.splitlines() if line.startswith(("error:", "Running stage", "ERROR"))
    )[-6000:]
    assert calls > 0, "no stage reached the test server"
    assert "name: vllm" in (repo / "params.yaml").read_text()

    needle = SENTINEL.encode()
    canary = tmp_path / "canary" / "deep" / "x.bin"
    canary.parent.mkdir(parents=True)
    canary.write_bytes(b"\0prefix" + needle + b"suffix")
    assert files_containing(tmp_path / "canary", needle) == [str(canary)]  # the scan works
    assert needle not in log.encode(), "sentinel key printed to the run's output"
    assert files_containing(repo, needle) == []  # params.yaml, dvc.lock, data/, reports/, .dvc/
    assert files_containing(cache, needle) == []
    assert list(cache.rglob("*.json")), "the LLM cache was not used"
    history = subprocess.run(["git", "log", "-p", "--all", "--binary"], cwd=repo,
                             capture_output=True, check=True).stdout
    assert needle not in history
