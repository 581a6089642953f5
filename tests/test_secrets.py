"""Guarantee: an API key in the environment never reaches params.yaml, dvc.lock, reports/,
data/, the LLM cache, DVC's own files, git history or logs.

A full `dvc exp run -S experiment=smoke -S llm=vllm` in a temp copy of the repo, every hosted
role pointed at the loopback test server, with a sentinel key and debug logging on; then every
byte the run left behind is searched for the sentinel.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
from repo_copy import copy_repo, git_env, git_init
from server_roles import pipeline_responder

from falsereject.testing.server import FakeOpenAIServer

# made at run time, so not even this file contains it
SENTINEL = "sk-SENTINEL-" + secrets.token_hex(16)

pytestmark = pytest.mark.slow


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
        env = {**git_env(cache), "VLLM_API_KEY": SENTINEL, "VLLM_API_BASE": srv.base_url,
               "FR_LOG_LEVEL": "DEBUG", "LITELLM_LOG": "DEBUG"}
        git_init(repo, env)
        proc = subprocess.run(
            # two rounds: the role-playing discriminator accepts only a revised prompt
            ["dvc", "exp", "run", "-v", "-S", "experiment=smoke", "-S", "llm=vllm",
             "-S", "generate.max_iterations=2", "-S", "seeds.only_ids=null",
             "-S", "seeds.max_seeds=2"],
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

