"""Seeds derived from the run seed, and seeded orders: one definition each, so every stage
derives sampling seeds and picks subsets the same way."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def call_seed(run_seed: int, *parts: object, sep: str = "|") -> int:
    """A stable 32-bit sampling seed for one call, from the run seed and what identifies the call
    (record id, role, attempt...): distinct calls differ, a re-run hits the LLM cache."""
    text = sep.join([str(run_seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def seeded_rank(seed: int, key: str) -> str:
    """The sort key of `key` in the order seeded by `seed`."""
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def seeded_order(items: Iterable[T], seed: int, key: Callable[[T], str]) -> list[T]:
    """`items` in a seeded pseudo-random order of their ids (`key`). An item's rank depends only
    on its own id, so adding or removing others keeps the rest in the same relative order."""
    return sorted(items, key=lambda item: seeded_rank(seed, key(item)))
