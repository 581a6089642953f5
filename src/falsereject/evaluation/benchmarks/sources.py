"""Reading a benchmark's raw records from its configured source.

`pipeline` and `file` read local JSONL/CSV strictly (errors name file and line); `hf` goes
through `falsereject.core.hub.load_hf_dataset` at the pinned revision; `url` downloads once into
`.cache/benchmarks/` and checks the pinned sha256. Without network access the remote sources
fail with a message that says how to configure a local copy instead.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import urllib.request
from pathlib import Path
from typing import Any

from falsereject.core import settings
from falsereject.core.config import BenchmarkSource
from falsereject.core.hub import HubUnavailableError, load_hf_dataset
from falsereject.core.io import InputError, read_csv, read_jsonl_numbered

log = logging.getLogger(__name__)

Record = tuple[str, dict[str, Any]]  # (locator, record)
ENV_CACHE = "FR_BENCHMARK_CACHE_DIR"


def source_description(src: BenchmarkSource, pipeline_path: str | None = None) -> str:
    if src.type == "pipeline":
        return str(pipeline_path)
    if src.type == "file":
        return str(src.path)
    if src.type == "hf":
        sub = f" ({src.subset})" if src.subset else ""
        return f"hf:{src.hf_id}@{src.revision}{sub} split {src.split}"
    return f"{src.url} (sha256 {src.sha256})"


def is_pinned(src: BenchmarkSource) -> bool:
    """Whether the source is immutable: a local file, a 40-hex revision or a checked sha256."""
    if src.type == "hf":
        return bool(re.fullmatch(r"[0-9a-f]{40}", src.revision or ""))
    return True


def _offline() -> bool:
    return any(os.environ.get(v, "0") not in ("0", "", "false", "False")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _local_rows(path: str | Path, fmt: str) -> list[Record]:
    if fmt == "jsonl":
        return [(f"{path}:{n}", rec) for n, rec in read_jsonl_numbered(path)]
    return [(f"{path}:{n}", dict(row)) for n, row in read_csv(path)]


def _parse_bytes(raw: bytes, fmt: str, where: str) -> list[Record]:
    text = raw.decode("utf-8-sig")
    if fmt == "jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                rows.append((f"{where}:{n}", json.loads(line)))
        return rows
    reader = csv.DictReader(io.StringIO(text))
    return [(f"{where}:{reader.line_num}", dict(row)) for row in reader]


def fetch_pinned(url: str, sha256: str) -> bytes:
    """The bytes at `url`, verified against `sha256`, cached by hash."""
    cache = settings.get().cache_dir("benchmarks") / sha256
    if cache.exists():
        raw = cache.read_bytes()
        if hashlib.sha256(raw).hexdigest() == sha256:
            return raw
        cache.unlink()  # corrupted copy: fetch again
    how = ("download it elsewhere, check `sha256sum` prints " + sha256 + ", and configure the "
           "benchmark with source {type: file, path: <copy>, format: csv|jsonl}")
    if _offline():
        raise HubUnavailableError(f"{url} is not cached and this machine is offline "
                                  f"(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE set); {how}")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - pinned https URL
            raw = resp.read()
    except OSError as err:
        raise HubUnavailableError(f"cannot fetch {url} ({type(err).__name__}: {err}); {how}") \
            from None
    got = hashlib.sha256(raw).hexdigest()
    if got != sha256:
        raise InputError(f"{url}: sha256 {got} does not match the pinned {sha256}; the upstream "
                         "file changed, so update the pin deliberately")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(raw)
    return raw


def read_records(src: BenchmarkSource, pipeline_path: str | None = None) -> list[Record]:
    """Every raw record of a source with a locator for error messages."""
    if src.type == "pipeline":
        if not pipeline_path:
            raise InputError("source type=pipeline needs the test-split path (--test-split)")
        return _local_rows(pipeline_path, "jsonl")
    if src.type == "file":
        return _local_rows(src.path or "", src.format or "jsonl")
    if src.type == "url":
        return _parse_bytes(fetch_pinned(src.url or "", src.sha256 or ""), src.format or "csv",
                            src.url or "")
    if not is_pinned(src):
        log.warning("%s is not pinned to a commit sha; results may change upstream",
                    source_description(src))
    ds = load_hf_dataset(src.hf_id or "", src.revision or "", src.split or "", name=src.subset)
    where = f"{src.hf_id}@{(src.revision or '')[:12]}"
    return [(f"{where} row {i}", dict(row)) for i, row in enumerate(ds)]
