"""Records that cross a stage boundary: one typed model each, and one validating JSONL reader.

A model names the keys and types a consuming stage relies on; other keys (provenance, fields a
later version adds) are allowed and pass through untouched. `read_records` checks every row
against the model and returns the rows as they were written (dicts), so a stage never
re-checks its input with its own key list. Errors name the file and line:

    data/extract/subgraphs.jsonl:3: subgraph record lacks ['edges']
    data/split/train.jsonl:2: `category` must be a non-empty int
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from falsereject.core.io import InputError, read_jsonl_numbered


class Record(BaseModel):
    """Required keys with exact types (no coercion: "6" is not a category); extra keys kept."""

    model_config = ConfigDict(extra="allow", strict=True)
    kind: ClassVar[str] = "record"
    non_empty: ClassVar[tuple[str, ...]] = ()  # string fields that must not be blank

    @model_validator(mode="after")
    def _non_empty(self) -> Record:
        for name in self.non_empty:
            if not getattr(self, name).strip():
                raise ValueError(f"`{name}` must be a non-empty str")
        return self


class Seed(Record):
    """A seed prompt (stage `seeds` -> `extract`)."""

    kind: ClassVar[str] = "seed"
    non_empty: ClassVar[tuple[str, ...]] = ("id", "prompt")
    id: str
    prompt: str
    category: int
    category_text: str


class Subgraph(Record):
    """A seed's entity subgraph (stage `extract` -> `generate`)."""

    kind: ClassVar[str] = "subgraph"
    seed_id: str
    category: int
    category_text: str
    seed_prompt: str
    status: Literal["ok", "failed"]
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]

    @model_validator(mode="after")
    def _ok_has_nodes(self) -> Subgraph:
        if self.status == "ok" and not self.nodes:
            raise ValueError("status ok but no nodes")
        return self


class Candidate(Record):
    """One adversarial-loop candidate, accepted or rejected (stage `generate`'s outputs)."""

    kind: ClassVar[str] = "candidate"
    id: str
    prompt: str | None  # None: the Generator never produced a usable prompt
    category: int
    category_text: str
    seed_id: str
    status: Literal["accepted", "rejected"]
    rejected_at: str | None
    provenance: dict[str, Any]


class Prompt(Record):
    """A prompt of the over-refusal data set (split train/test rows -> `structure`)."""

    kind: ClassVar[str] = "prompt"
    non_empty: ClassVar[tuple[str, ...]] = ("id", "prompt", "category_text")
    id: str
    prompt: str
    category: int
    category_text: str


class AcceptedPrompt(Prompt):
    """An accepted prompt (stage `generate` -> `split`): a prompt that names its seed."""

    kind: ClassVar[str] = "accepted"
    seed_id: str


class CotResponse(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    reasoning_content: str
    solution: str


class StructuredRecord(Prompt):
    """A prompt with its structured responses (stage `structure` -> export, `sft`)."""

    kind: ClassVar[str] = "structured"
    non_empty: ClassVar[tuple[str, ...]] = ("id", "prompt", "instruct_response")
    instruct_response: str
    cot_response: CotResponse


class Verdict(Record):
    """A model's judged answer to a benchmark prompt (stage `eval`'s verdicts file)."""

    kind: ClassVar[str] = "verdict"
    benchmark: str
    sample_id: str
    model: str
    prompt: str
    response: str | None  # None: generation failed for good
    verdict: Literal["direct_refusal", "safe_partial_compliance", "full_compliance",
                     "undetermined"]
    judge_route: str
    judge_rule: str


_TYPE_WORDS = {"string_type": "str", "int_type": "int", "list_type": "list",
               "dict_type": "dict", "model_type": "object", "bool_type": "bool"}


def _problem(model: type[Record], err: ValidationError) -> str:
    """One line for the first thing wrong with a row, in the words the stages always used."""
    errors = err.errors(include_url=False)
    missing = [".".join(map(str, e["loc"])) for e in errors if e["type"] == "missing"]
    if missing:
        return f"{model.kind} record lacks {missing}"
    e = errors[0]
    where = ".".join(map(str, e["loc"]))
    if not where:  # a model validator: its message is the problem
        return str(e["msg"]).removeprefix("Value error, ")
    if e["type"] in _TYPE_WORDS:
        return f"`{where}` must be a non-empty {_TYPE_WORDS[e['type']]}"
    return f"`{where}`: {e['msg']}"


def validate_row(model: type[Record], row: dict[str, Any], where: str) -> dict[str, Any]:
    """`row` itself once it fits `model`; else InputError `<where>: <problem>`."""
    try:
        model.model_validate(row)
    except ValidationError as err:
        raise InputError(f"{where}: {_problem(model, err)}") from None
    return row


def read_records(path: str | Path, model: type[Record], *, unique: str | None = None,
                 sort_by: str | None = None, allow_empty: bool = True) -> list[dict[str, Any]]:
    """Every row of a JSONL file, validated against `model` (file:line on error).

    `unique`: a key whose values must not repeat; `sort_by`: return the rows sorted by that key
    (else in file order); `allow_empty=False`: a file without rows is an error.
    """
    rows, seen = [], {}
    for line, row in read_jsonl_numbered(path):
        validate_row(model, row, f"{path}:{line}")
        if unique is not None:
            value = row[unique]
            if value in seen:
                raise InputError(f"{path}:{line}: duplicate {unique} {value!r} (first on line "
                                 f"{seen[value]})")
            seen[value] = line
        rows.append(row)
    if not rows and not allow_empty:
        raise InputError(f"{path}: no {model.kind} records")
    return sorted(rows, key=lambda r: r[sort_by]) if sort_by else rows
