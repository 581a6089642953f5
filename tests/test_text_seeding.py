"""One <think> splitter (core/text.py) and one seed derivation / seeded order (core/seeding.py)."""

from __future__ import annotations

import hashlib

from falsereject.core.seeding import call_seed, seeded_order
from falsereject.core.text import join_think, split_think


def test_split_think_cases():
    s = split_think("<think>a</think> mid <think>b</think>final")
    assert (s.reasoning, s.answer, s.closed) == ("a\nmid b", "final", True)
    s = split_think("before <think>cut off")
    assert (s.reasoning, s.answer, s.closed) == ("cut off", "before", False)
    assert split_think(None).answer == "" and split_think("<think></think>x").reasoning is None


def test_join_then_split_round_trips():
    text = join_think(" plan it ", "The answer.")
    assert text == "<think>\nplan it\n</think>\n\nThe answer."
    s = split_think(text)
    assert (s.reasoning, s.answer, s.closed) == ("plan it", "The answer.", True)


def test_call_seed_keeps_the_values_stages_always_used():
    # the extract/generate formula before the helper existed: cached LLM answers depend on it
    text = "|".join(["7", "extract", "s-1", "2", "0"])
    assert call_seed(7, "extract", "s-1", 2, 0) == int(hashlib.sha256(text.encode()).hexdigest()[:8],
                                                     16)
    assert call_seed(7, "a", sep=":") != call_seed(7, "a")
    assert 0 <= call_seed(0) < 2**32


def test_seeded_order_is_stable_when_items_are_added():
    ids = [f"x{i}" for i in range(20)]
    order = seeded_order(ids, 3, key=str)
    bigger = seeded_order([*ids, "new1", "new2"], 3, key=str)
    assert [i for i in bigger if i in ids] == order
    assert order != seeded_order(ids, 4, key=str) and sorted(order) == sorted(ids)
