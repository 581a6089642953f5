"""Records -> chat messages for SFT: FalseReject rows (instruct or cot target) and general data.

- FalseReject (public schema or the pipeline's structured records): the prompt is the user
  turn; the assistant turn is `instruct_response` (mode instruct) or, for mode cot, the
  R1-style `<think>\\n{reasoning_content}\\n</think>\\n\\n{solution}`.
- General instruction data: `messages` lists of {role, content} (Tulu-3 SFT mixture) or
  ShareGPT `conversations` lists of {from, value} (OpenThoughts).
"""

from __future__ import annotations

from typing import Any

from falsereject.core.text import join_think

Message = dict[str, str]

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "chatgpt": "assistant", "bing": "assistant"}


class ChatFormatError(ValueError):
    """A record cannot become a chat; the message names the record and field."""


def cot_text(reasoning: str, solution: str) -> str:
    """The cot target: reasoning in a `<think>` block, then the final answer."""
    return join_think(reasoning, solution)


def _text(record: dict[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ChatFormatError(f"{where}: `{key}` must be a non-empty string")
    return value


def record_messages(record: dict[str, Any], mode: str, system_prompt: str | None = None,
                    where: str = "record") -> list[Message]:
    """One FalseReject training row as a chat whose last turn is the SFT target."""
    if mode == "instruct":
        target = _text(record, "instruct_response", where)
    elif mode == "cot":
        cot = record.get("cot_response")
        if not isinstance(cot, dict):
            raise ChatFormatError(f"{where}: `cot_response` must be an object")
        target = cot_text(_text(cot, "reasoning_content", f"{where} cot_response"),
                          _text(cot, "solution", f"{where} cot_response"))
    else:
        raise ChatFormatError(f"mode must be instruct or cot, not {mode!r}")
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return msgs + [{"role": "user", "content": _text(record, "prompt", where)},
                   {"role": "assistant", "content": target}]


def general_messages(row: dict[str, Any], field: str, where: str = "row") -> list[Message]:
    """A general-data row's conversation, normalized to role/content messages."""
    turns = row.get(field)
    if not isinstance(turns, list) or not turns:
        raise ChatFormatError(f"{where}: `{field}` must be a non-empty list of turns")
    msgs = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ChatFormatError(f"{where}: {field}[{i}] must be an object")
        if "role" in turn:
            role, content = turn.get("role"), turn.get("content")
        else:
            role, content = _SHAREGPT_ROLES.get(str(turn.get("from")).lower()), turn.get("value")
        if role not in ("system", "user", "assistant"):
            raise ChatFormatError(f"{where}: {field}[{i}] has unknown role {role!r}")
        if not isinstance(content, str):
            raise ChatFormatError(f"{where}: {field}[{i}] has no text content")
        msgs.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in msgs):
        raise ChatFormatError(f"{where}: `{field}` has no assistant turn to train on")
    return msgs
