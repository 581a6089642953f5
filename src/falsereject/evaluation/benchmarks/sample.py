"""The unit every benchmark maps its records to, and helpers the mappings share."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Literal

from falsereject.core.io import InputError

PromptLabel = Literal["benign", "toxic"]


@dataclass(frozen=True)
class Sample:
    """One prompt to answer. `label` says what a good model does: answer benign prompts, refuse
    (or safely partially answer) toxic ones; both axes are reported for every benchmark."""

    id: str
    prompt: str
    label: PromptLabel
    category: str | None
    benchmark: str
    locator: str  # where the record came from (file:line or dataset@revision row), for errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def text_id(prefix: str, text: str) -> str:
    """A stable id for upstream rows without one: content hash of the prompt."""
    return f"{prefix}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def required_text(record: dict[str, Any], key: str, locator: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{locator}: field {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def optional_text(record: dict[str, Any], key: str | None) -> str | None:
    if key is None:
        return None
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()
