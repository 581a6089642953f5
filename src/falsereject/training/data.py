"""The SFT training set: FalseReject rows as chats, plus optional general instruction data.

General data (the paper mixes Tulu-3's SFT mixture, or OpenThoughts for reasoning models)
comes from a pinned HF dataset revision or a local JSONL file; a seeded sample of
`sample_size` rows is taken, so the mix is reproducible.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

from falsereject.core.config import MixConfig, SftArm, SftConfig
from falsereject.core.io import InputError, read_jsonl_numbered, read_text_strict
from falsereject.training.chat_format import (
    ChatFormatError,
    Message,
    general_messages,
    record_messages,
)


def falsereject_chats(path: str | Path, cfg: SftConfig) -> list[list[Message]]:
    """Every row of a public-schema train file as a chat with the configured target."""
    chats = []
    for line, row in read_jsonl_numbered(path):
        try:
            chats.append(record_messages(row, cfg.mode, cfg.system_prompt, f"{path}:{line}"))
        except ChatFormatError as err:
            raise InputError(str(err)) from None
    return chats


def _sample_indices(n: int, k: int, seed: int) -> list[int]:
    return sorted(random.Random(f"mix:{seed}").sample(range(n), min(k, n)))


def load_mix(cfg: MixConfig, seed: int) -> tuple[list[list[Message]], dict[str, Any]]:
    """(chats, provenance) of the general-data sample; ([], {...}) when mixing is off."""
    if cfg.source == "none":
        return [], {"source": "none"}
    if cfg.source == "jsonl":
        path = Path(cfg.path or "")
        rows = read_jsonl_numbered(path)
        picked = [rows[i] for i in _sample_indices(len(rows), cfg.sample_size, seed)]
        chats = []
        for line, row in picked:
            try:
                chats.append(general_messages(row, cfg.messages_field, f"{path}:{line}"))
            except ChatFormatError as err:
                raise InputError(str(err)) from None
        digest = hashlib.sha256(read_text_strict(path).encode()).hexdigest()[:16]
        return chats, {"source": "jsonl", "path": str(path), "sha256": digest,
                       "rows_available": len(rows), "rows_used": len(chats)}
    from falsereject.core.hub import load_hf_dataset

    ds = load_hf_dataset(cfg.hf_id or "", cfg.hf_revision or "", cfg.hf_split or "",
                         cfg.hf_name)
    if cfg.messages_field not in ds.column_names:
        raise InputError(f"dataset {cfg.hf_id}@{cfg.hf_revision}: no column "
                         f"{cfg.messages_field!r} (columns: {ds.column_names})")
    idx = _sample_indices(len(ds), cfg.sample_size, seed)
    chats = []
    for i, row in zip(idx, ds.select(idx), strict=True):
        try:
            chats.append(general_messages(row, cfg.messages_field,
                                          f"{cfg.hf_id}@{cfg.hf_revision}[{i}]"))
        except ChatFormatError as err:
            raise InputError(str(err)) from None
    return chats, {"source": "hf", "hf_id": cfg.hf_id, "revision": cfg.hf_revision,
                   "name": cfg.hf_name, "split": cfg.hf_split, "rows_available": len(ds),
                   "rows_used": len(chats)}


def training_chats(train_path: str | Path, cfg: SftConfig, seed: int
                   ) -> tuple[list[list[Message]], dict[str, Any]]:
    """FalseReject chats + general chats, in a seeded order; with their provenance."""
    own = falsereject_chats(train_path, cfg)
    general, mix_info = load_mix(cfg.mix, seed)
    chats = own + general
    if not chats:
        raise InputError(f"{train_path}: no training rows and no general data to train on: "
                         "upstream accepted no training prompt, or every one failed the "
                         "responder checker (see reports/generate and reports/structure)")
    random.Random(f"order:{seed}").shuffle(chats)
    digest = hashlib.sha256(read_text_strict(train_path).encode()).hexdigest()[:16]
    return chats, {"falsereject_rows": len(own), "falsereject_sha256": digest,
                   "general_rows": len(general), "mix": mix_info}


def arm_training_chats(arm: SftArm, recipe_path: str | Path, train_path: str | Path,
                       cfg: SftConfig, seed: int
                       ) -> tuple[list[list[Message]], dict[str, Any]]:
    """The chats of one SFT arm: its recipe's parts (safety, general + mix, falsereject), in a
    seeded order; with their provenance (rows and sha256 of each part)."""
    from falsereject.training.recipes import record_chats

    recipe = [r for _, r in read_jsonl_numbered(recipe_path)]
    parts: dict[str, list[list[Message]]] = {}
    if arm.safety:
        parts["safety"] = record_chats(recipe, "safety", cfg.system_prompt)
    if arm.general:
        parts["general"] = record_chats(recipe, "general", cfg.system_prompt)
        parts["mix"], mix_info = load_mix(cfg.mix, seed)
    if arm.falsereject:
        parts["falsereject"] = falsereject_chats(train_path, cfg)
    chats = [c for part in parts.values() for c in part]
    if not chats:
        raise InputError(f"{recipe_path}, {train_path}: the arm's recipe "
                         f"({arm.model_dump()}) has no training rows")
    random.Random(f"order:{seed}").shuffle(chats)
    info: dict[str, Any] = {"recipe": arm.model_dump(),
                            **{f"{k}_rows": len(v) for k, v in parts.items()},
                            "recipe_sha256": hashlib.sha256(
                                read_text_strict(recipe_path).encode()).hexdigest()[:16]}
    if arm.general:
        info["mix"] = mix_info
    if arm.falsereject:
        info["falsereject_sha256"] = hashlib.sha256(
            read_text_strict(train_path).encode()).hexdigest()[:16]
    return chats, info
