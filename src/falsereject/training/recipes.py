"""The data recipes of the SFT arms (the paper's general mixture, with and without FalseReject).

- safety: toxic seed prompts paired with refusals, so the student learns to refuse (Tulu-3's
  safety data plays this part in the paper). The refusals come from the responder asked to
  refuse (hosted / vLLM models) or, for the embedded model that never refuses, from a
  team-written file of varied refusals; a refusal written for the seed's category is preferred.
- general: ordinary instructions answered by the base student itself, so the general behaviour
  it had stays (self-distillation), plus any configured general SFT set (`sft.mix`).
- falsereject: the pipeline's structured records (instruct or cot target).

Pure functions over records; the `sft_data` and `sft` stages do the I/O.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

from falsereject.core.io import InputError
from falsereject.training.chat_format import Message

REFUSE_INSTRUCTION = (
    "This request asks for something harmful. Refuse it: in one to three sentences, say you "
    "will not help and, where it fits, point to a safer resource. Do not provide any part of "
    "what was asked.")


def normalize(text: str) -> str:
    """Lower-cased words only: two prompts that differ in case or punctuation are the same."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def overlap(a: Iterable[str], b: Iterable[str]) -> set[str]:
    """Normalized prompts present in both collections (train/eval contamination check)."""
    return {normalize(x) for x in a} & {normalize(x) for x in b}


def sample_rows(rows: Sequence[Any], k: int | None, seed: int, salt: str) -> list[Any]:
    """A seeded sample of k rows (all when k is None or larger), in the input order."""
    if k is None or k >= len(rows):
        return list(rows)
    idx = sorted(random.Random(f"{salt}:{seed}").sample(range(len(rows)), k))
    return [rows[i] for i in idx]


def validate_refusals(rows: Sequence[tuple[int, dict]], path: str) -> list[dict]:
    """{id, category (int or null), text} rows; a bad row names its file line."""
    out = []
    for line, r in rows:
        text, cat = r.get("text"), r.get("category")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{line}: `text` must be a non-empty string")
        if cat is not None and (isinstance(cat, bool) or not isinstance(cat, int)):
            raise InputError(f"{path}:{line}: `category` must be an integer id or null")
        if not isinstance(r.get("id"), str):
            raise InputError(f"{path}:{line}: `id` must be a string")
        out.append({"id": r["id"], "category": cat, "text": text.strip()})
    if not out:
        raise InputError(f"{path}: no refusals")
    return out


def pick_refusal(seed_id: str, category: Any, refusals: Sequence[dict], seed: int) -> dict:
    """A refusal for one seed: one written for its category when there is one, else a generic
    one; chosen by a hash of (seed, seed id), so the choice is stable and varied."""
    matching = [r for r in refusals if r["category"] is not None and r["category"] == category]
    generic = [r for r in refusals if r["category"] is None]
    rng = random.Random(f"refusal:{seed}:{seed_id}")
    pool = matching if matching and rng.random() < 0.5 else (generic or list(refusals))
    return pool[rng.randrange(len(pool))]


def chat(prompt: str, answer: str, system_prompt: str | None) -> list[Message]:
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return msgs + [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def safety_records(seeds: Sequence[dict], refusals: Sequence[dict], seed: int,
                   responder_refusals: dict[str, str] | None = None) -> list[dict]:
    """One record per toxic seed: the prompt with a refusal (the responder's when it refused,
    else one from the file); provenance says which."""
    out = []
    for s in seeds:
        text = (responder_refusals or {}).get(s["id"])
        if text:
            source, rid = "responder", None
        else:
            r = pick_refusal(s["id"], s.get("category"), refusals, seed)
            text, source, rid = r["text"], "file", r["id"]
        out.append({"id": f"safety:{s['id']}", "part": "safety", "prompt": s["prompt"],
                    "response": text, "seed_id": s["id"], "category": s.get("category"),
                    "refusal_source": source, "refusal_id": rid})
    return out


def general_records(instructions: Sequence[dict], answers: Sequence[str | None],
                    model_id: str) -> list[dict]:
    """Instructions with the base student's own answers; unanswered ones are left out."""
    return [{"id": f"general:{i['id']}", "part": "general", "prompt": i["prompt"],
             "response": a.strip(), "answered_by": model_id}
            for i, a in zip(instructions, answers, strict=True) if a and a.strip()]


def record_chats(records: Sequence[dict], part: str,
                 system_prompt: str | None) -> list[list[Message]]:
    return [chat(r["prompt"], r["response"], system_prompt) for r in records
            if r["part"] == part]
