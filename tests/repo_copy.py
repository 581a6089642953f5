"""A throwaway copy of the repository for tests that run `dvc` end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def copy_repo(dst: Path) -> None:
    """Tracked and untracked-but-not-ignored files, without outputs or dvc.lock."""
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


def git_env(llm_cache: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
            "FR_LLM_CACHE_DIR": str(llm_cache),
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git_init(repo: Path, env: dict[str, str]) -> None:
    """DVC experiments need a git repository with a first commit."""
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
