"""Content-addressed on-disk cache of LLM completions.

One JSON file per key under a two-level fan-out; writes are atomic (temp file + rename), so a
process killed mid-write never leaves a half entry, and concurrent writers of the same key are
harmless. Each entry carries its own key (`_key`) and a read checks it, so an entry that is
not the answer to this request is a miss with a warning, never served (tests/test_cache_workers
runs two processes writing one cache at once). Lives outside DVC outputs, so a killed or repeated stage never pays twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from falsereject.core import settings
from falsereject.core.errors import UserError

ENV_DIR = "FR_LLM_CACHE_DIR"
KEY_FIELD = "_key"  # the entry's own key, checked on read
log = logging.getLogger(__name__)


class CacheError(OSError, UserError):
    pass


def cache_key(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class DiskCache:
    def __init__(self, root: str | Path | None = None):
        # default: the main repository's .cache/llm, shared by queued and temp experiments
        self.root = Path(root or settings.get().cache_dir("llm"))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CacheError(
                f"LLM cache directory {self.root} is not writable ({err.strerror}); "
                f"set {ENV_DIR} to a writable path"
            ) from None
        if not os.access(self.root, os.W_OK):
            raise CacheError(
                f"LLM cache directory {self.root} is not writable; set {ENV_DIR} to a writable path"
            )

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            with path.open(encoding="utf-8") as fh:
                entry = json.load(fh)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise CacheError(f"cannot read LLM cache entry {path} ({err.strerror}); set "
                             f"{ENV_DIR} to a readable, writable path") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("LLM cache entry %s is corrupt: treated as a miss", path)
            return None  # the next put overwrites it
        if not isinstance(entry, dict):
            log.warning("LLM cache entry %s is not an object: treated as a miss", path)
            return None
        stored = entry.pop(KEY_FIELD, key)  # entries written before the field: trusted
        if stored != key:
            log.warning("LLM cache entry %s holds the answer to another request (key %s): "
                        "treated as a miss", path, str(stored)[:16])
            return None
        return entry

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        except OSError as err:
            raise CacheError(f"cannot write to LLM cache directory {self.root} "
                             f"({err.strerror}); set {ENV_DIR} to a writable path") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({**value, KEY_FIELD: key}, fh, ensure_ascii=False, sort_keys=True)
            os.replace(tmp, path)
        except OSError as err:
            Path(tmp).unlink(missing_ok=True)
            raise CacheError(f"cannot write to LLM cache directory {self.root} "
                             f"({err.strerror}); set {ENV_DIR} to a writable path") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def embedding_cache(root: str | Path | None = None) -> DiskCache:
    """Sentence-embedding vectors: the `embeddings/` folder of `root`, else FR_EMBEDDING_CACHE_DIR
    (default: the `embeddings/` folder of the LLM cache)."""
    if root is not None:
        return DiskCache(Path(root) / "embeddings")
    return DiskCache(settings.get().cache_dir("embeddings"))
