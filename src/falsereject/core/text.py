"""Reasoning traces in model text: the one place that knows the `<think>...</think>` convention
(the responder's checker, the judge and the SFT chat format all go through it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_OPEN = re.compile(re.escape(THINK_OPEN), re.I)
_CLOSE = re.compile(re.escape(THINK_CLOSE), re.I)


@dataclass(frozen=True)
class ThinkSplit:
    reasoning: str | None  # None: no reasoning found
    answer: str
    closed: bool  # False: a <think> block was opened and never closed (truncated output)


def split_think(text: str | None) -> ThinkSplit:
    """Separate `<think>...</think>` reasoning from the answer (tags in any case).

    Handles a missing opening tag (chat templates that open the block in the prompt), several
    blocks (all reasoning up to the last close, one line per block), and an unclosed block
    (generation stopped while thinking: everything after `<think>` is reasoning, the answer is
    what came before it, usually nothing).
    """
    text = text or ""
    if _CLOSE.search(text):
        *thoughts, answer = _CLOSE.split(text)
        inner = [_OPEN.sub("", t).strip() for t in thoughts]
        return ThinkSplit("\n".join(t for t in inner if t) or None, answer.strip(), True)
    opened = _OPEN.search(text)
    if opened:
        return ThinkSplit(text[opened.end():].strip() or None, text[:opened.start()].strip(),
                          False)
    return ThinkSplit(None, text.strip(), True)


def join_think(reasoning: str, answer: str) -> str:
    """The R1-style text of a reasoning trace and its answer: `<think>` block, blank line, answer."""
    return f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n\n{answer.strip()}"
