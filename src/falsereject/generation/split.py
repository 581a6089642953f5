"""Seeded train/test splits, stratified by category: by record (`stratified_split`) and grouped
by seed (`grouped_split`, what stage `split` uses: no seed has descendants on both sides).

`stratified_split`:

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


def grouped_split(records: Sequence[dict[str, Any]], test_fraction: float, seed: int,
                  group: str = "seed_id", key: str = "category"
                  ) -> tuple[list[dict], list[dict]]:
    """(train, test), each sorted by id, with every `group` (seed) wholly on one side.

    Groups are the units: round(G * test_fraction) of the G groups go to test (at least 1 and at
    most G - 1 when G >= 2 and the fraction is positive), allotted to categories in proportion
    to their number of groups (largest remainder, as `allot_test_quotas`); inside a category a
    seeded shuffle of its groups picks which. A group's category is that of its records (a seed
    has one category; a group spanning several is placed by its smallest category). With one
    seed per category, a category is wholly train or wholly test: a prompt's seed never leaks.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    groups: dict[Any, list[dict]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r["id"]):
        groups[r[group]].append(r)
    by_cat: dict[Any, list[Any]] = defaultdict(list)
    for g, rows in groups.items():
        by_cat[min((r[key] for r in rows), key=str)].append(g)
    quotas = allot_test_quotas({c: len(gs) for c, gs in by_cat.items()}, test_fraction, seed)
    test_groups: set[Any] = set()
    for c in sorted(by_cat, key=str):
        gs = sorted(by_cat[c], key=str)
        random.Random(f"{seed}:group:{c}").shuffle(gs)
        test_groups.update(gs[: quotas[c]])
    train = [r for g, rows in groups.items() if g not in test_groups for r in rows]
    test = [r for g, rows in groups.items() if g in test_groups for r in rows]
    return sorted(train, key=lambda r: r["id"]), sorted(test, key=lambda r: r["id"])
