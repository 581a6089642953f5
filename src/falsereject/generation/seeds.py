"""Toxic seed prompts: load from a JSONL/CSV file or a pinned HF dataset, normalize, select.

Records out: {id, prompt, category, category_text, source}, sorted by id. Any bad row stops the
load with an error naming the file and line; nothing is written by the caller in that case.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from falsereject.core.config import SeedsConfig
from falsereject.core.io import InputError, read_csv, read_jsonl_numbered
from falsereject.core.taxonomy import CATEGORIES, category_id


def stable_id(prompt: str) -> str:
    return "s-" + hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:12]


def normalize(raw: dict[str, Any], columns: dict[str, str], where: str, source: str
              ) -> dict[str, Any]:
    """One normalized seed from a raw row; `where` is "file:line" for errors."""
    for field in ("prompt", "category"):
        col = columns[field]
        if col not in raw:
            raise InputError(f"{where}: missing column {col!r} (mapped to {field!r})")
    prompt = raw[columns["prompt"]]
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        prompt = prompt[0]  # multi-turn sources (e.g. SORRY-Bench `turns`): the first turn
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"{where}: column {columns['prompt']!r} must be a non-empty string")
    cat = category_id(raw[columns["category"]])
    if cat is None:
        raise InputError(
            f"{where}: unknown category {raw[columns['category']]!r} "
            f"(expected an id 1..{len(CATEGORIES)} or a category name)"
        )
    sid = None
    if "id" in columns and columns["id"] in raw and raw[columns["id"]] not in (None, ""):
        sid = str(raw[columns["id"]]).strip()
    return {
        "id": sid or stable_id(prompt),
        "prompt": " ".join(prompt.split()),
        "category": cat,
        "category_text": CATEGORIES[cat],
        "source": source,
    }


def load_raw(cfg: SeedsConfig) -> list[tuple[str, dict[str, Any]]]:
    """(location, raw row) pairs from the configured source."""
    if cfg.source == "jsonl":
        return [(f"{cfg.path}:{n}", r) for n, r in read_jsonl_numbered(cfg.path)]
    if cfg.source == "csv":
        return [(f"{cfg.path}:{n}", r) for n, r in read_csv(cfg.path)]
    return load_hf(cfg)


def load_hf(cfg: SeedsConfig) -> list[tuple[str, dict[str, Any]]]:
    from falsereject.core.hub import load_hf_dataset

    ds = load_hf_dataset(cfg.hf_id, cfg.hf_revision, cfg.hf_split)
    return [(f"{cfg.hf_id}@{cfg.hf_revision}[{cfg.hf_split}] row {i}", dict(r))
            for i, r in enumerate(ds)]


def select(records: list[dict[str, Any]], max_per_category: int | None,
           max_seeds: int | None) -> list[dict[str, Any]]:
    """Deterministic subset: first N per category by id, then round-robin over categories."""
    by_cat: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r["id"]):
        by_cat[r["category"]].append(r)
    if max_per_category:
        by_cat = {c: rs[:max_per_category] for c, rs in by_cat.items()}
    picked: list[dict[str, Any]] = []
    depth = 0
    while any(len(rs) > depth for rs in by_cat.values()):
        for c in sorted(by_cat):
            if len(by_cat[c]) > depth:
                picked.append(by_cat[c][depth])
        depth += 1
    if max_seeds:
        picked = picked[:max_seeds]
    return sorted(picked, key=lambda r: r["id"])


def load_seeds(cfg: SeedsConfig) -> list[dict[str, Any]]:
    raw = load_raw(cfg)
    where_src = cfg.path if cfg.source != "hf" else f"{cfg.hf_id}@{cfg.hf_revision}"
    if not raw:
        raise InputError(f"{where_src}: no seed rows (empty file?)")
    source = f"{cfg.name}"
    records = [normalize(r, cfg.columns, where, source) for where, r in raw]
    seen: dict[str, str] = {}
    for (where, _), rec in zip(raw, records, strict=True):
        if rec["id"] in seen:
            raise InputError(f"{where}: duplicate seed id {rec['id']!r} (first at {seen[rec['id']]})")
        seen[rec["id"]] = where
    if cfg.only_ids is not None:
        unknown = sorted(set(cfg.only_ids) - set(seen))
        if unknown:
            raise InputError(f"{where_src}: seeds.only_ids names unknown ids {unknown}")
        records = [r for r in records if r["id"] in set(cfg.only_ids)]
    return select(records, cfg.max_per_category, cfg.max_seeds)


def select_seeds(seeds: list[dict[str, Any]], max_seeds: int | None) -> list[dict[str, Any]]:
    """All seeds, or `max_seeds` of them spread evenly over the (category, id) order, so a
    smaller run still covers categories across the whole taxonomy. Sorted by id."""
    ordered = sorted(seeds, key=lambda r: (r["category"], r["id"]))
    if max_seeds is not None and max_seeds < len(ordered):
        ordered = [ordered[i * len(ordered) // max_seeds] for i in range(max_seeds)]
    return sorted(ordered, key=lambda r: r["id"])
