"""Seeded train/test split, stratified by category.

The test set gets round(N * test_fraction) records (at least 1 and at most N - 1 when N >= 2
and the fraction is positive), allotted to categories in proportion to their size by largest
remainder (ties broken by a seeded shuffle of the categories); inside a category, a seeded
shuffle of the records sorted by id picks which go to test. Same records + seed -> same split.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any


def allot_test_quotas(sizes: dict[Any, int], test_fraction: float, seed: int) -> dict[Any, int]:
    """How many test records each category gets."""
    total = sum(sizes.values())
    if total == 0 or test_fraction <= 0:
        return {c: 0 for c in sizes}
    n_test = round(total * test_fraction)
    if total >= 2:
        n_test = min(max(n_test, 1), total - 1)
    else:
        n_test = min(n_test, total)
    exact = {c: n * n_test / total for c, n in sizes.items()}
    quotas = {c: math.floor(x) for c, x in exact.items()}
    order = sorted(sizes, key=str)
    random.Random(f"{seed}:quota").shuffle(order)
    order.sort(key=lambda c: -(exact[c] - quotas[c]))  # stable: shuffled order breaks ties
    for c in order[: n_test - sum(quotas.values())]:
        quotas[c] += 1
    return quotas


def stratified_split(records: Sequence[dict[str, Any]], test_fraction: float, seed: int,
                     key: str = "category") -> tuple[list[dict], list[dict]]:
    """(train, test), each sorted by id."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    by_cat: dict[Any, list[dict]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r["id"]):
        by_cat[r[key]].append(r)
    quotas = allot_test_quotas({c: len(rs) for c, rs in by_cat.items()}, test_fraction, seed)
    train, test = [], []
    for c in sorted(by_cat, key=str):
        rows = list(by_cat[c])
        random.Random(f"{seed}:{c}").shuffle(rows)
        test += rows[: quotas[c]]
        train += rows[quotas[c]:]
    return sorted(train, key=lambda r: r["id"]), sorted(test, key=lambda r: r["id"])
