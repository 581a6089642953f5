"""Defensive JSON extraction from LLM text.

LLMs wrap JSON in code fences, add prose before or after it, stop mid-object when they hit
`max_tokens`, or refuse instead of answering. `extract_json` finds the first JSON object in the
text, repairs a truncated one by closing what is open (dropping the incomplete tail), and
otherwise raises `ParseError` with a short `reason` that callers record. Retrying is the
callers' job (bounded, with the error fed back to the model).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from falsereject.core.refusal import is_refusal

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|$)", re.S)


class ParseError(ValueError):
    """LLM text without a usable JSON value. `reason` is one of: empty, refusal, no_json,
    malformed, truncated, invalid (parsed but wrong shape)."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


@dataclass(frozen=True)
class Parsed:
    value: Any
    repaired: bool  # the text was truncated and closed by `repair_truncated`


def _candidates(text: str) -> list[str]:
    """Places JSON may hide, most explicit first: fenced blocks, then the raw text."""
    out = [m.group(1) for m in _FENCE.finditer(text) if m.group(1).strip()]
    out.append(text)
    return out


def _scan(text: str, start: int) -> tuple[int | None, list[str], bool, int]:
    """Walk a JSON value from `start`. Returns (end index or None if unterminated, the stack of
    open brackets at the end, whether a string is open, the index after the last complete
    member/element, or -1)."""
    stack: list[str] = []
    in_str = escape = False
    last_complete = -1
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
                if stack and stack[-1] == "[":
                    last_complete = i + 1
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack or {"}": "{", "]": "["}[ch] != stack[-1]:
                return i, stack, False, last_complete  # mismatched: let json.loads report it
            stack.pop()
            if not stack:
                return i + 1, stack, False, last_complete
            last_complete = i + 1
        elif ch == ",":
            last_complete = i
    return None, stack, in_str, last_complete


def repair_truncated(fragment: str) -> str | None:
    """Close a JSON object/array cut off mid-way: drop the incomplete tail after the last
    complete member, then close open brackets. None if nothing complete survives."""
    end, stack, _, last = _scan(fragment, 0)
    if end is not None or not stack:
        return None
    if last <= 0:
        return None
    head = fragment[:last].rstrip().rstrip(",")
    _, stack, in_str, _ = _scan(head, 0)
    if in_str:
        return None
    # a dangling key ("name": ) or key without value cannot be closed: cut back to the comma
    closing = "".join("}" if b == "{" else "]" for b in reversed(stack))
    candidate = head + closing
    try:
        json.loads(candidate)
    except json.JSONDecodeError:
        return None
    return candidate


def extract_json(text: str | None, *, expect: type = dict) -> Parsed:
    """The first JSON value of type `expect` (dict or list) in LLM output."""
    if text is None or not text.strip():
        raise ParseError("empty", "the model returned no text")
    opener = "{" if expect is dict else "["
    truncated: str | None = None
    malformed: str | None = None
    for chunk in _candidates(text):
        pos = chunk.find(opener)
        while pos != -1:
            end, stack, _, _ = _scan(chunk, pos)
            if end is None:
                fixed = repair_truncated(chunk[pos:])
                if fixed is not None:
                    value = json.loads(fixed)
                    if isinstance(value, expect):
                        return Parsed(value, repaired=True)
                truncated = truncated or chunk[pos:pos + 80]
                break
            try:
                value = json.loads(chunk[pos:end])
            except json.JSONDecodeError as err:
                malformed = malformed or f"{err.msg} at char {err.pos}"
            else:
                if isinstance(value, expect):
                    return Parsed(value, repaired=False)
            pos = chunk.find(opener, pos + 1)
    if is_refusal(text):
        raise ParseError("refusal", f"the model refused: {text.strip()[:120]!r}")
    if truncated is not None:
        raise ParseError("truncated", f"JSON cut off and not repairable: {truncated!r}")
    if malformed is not None:
        raise ParseError("malformed", malformed)
    raise ParseError("no_json", f"no JSON {expect.__name__} in {text.strip()[:120]!r}")


def require_str(obj: dict, key: str, *, max_len: int | None = None, allow_empty: bool = False
                ) -> str:
    """A string field, whitespace-collapsed; ParseError('invalid') when missing or wrong type."""
    value = obj.get(key)
    if not isinstance(value, str):
        raise ParseError("invalid", f"field {key!r} must be a string, got {type(value).__name__}")
    value = " ".join(value.split())
    if not value and not allow_empty:
        raise ParseError("invalid", f"field {key!r} is empty")
    if max_len is not None:
        value = value[:max_len]
    return value


def require_choice(obj: dict, key: str, choices: tuple[str, ...]) -> str:
    value = obj.get(key)
    norm = value.strip().lower().replace(" ", "_").replace("-", "_") if isinstance(value, str) \
        else value
    if norm not in choices:
        raise ParseError("invalid", f"field {key!r} must be one of {list(choices)}, got {value!r}")
    return norm


def require_bool(obj: dict, key: str) -> bool:
    value = obj.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
        return value.strip().lower() in ("true", "yes")
    raise ParseError("invalid", f"field {key!r} must be a boolean, got {value!r}")
