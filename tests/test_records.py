"""Typed records between stages and the one validating JSONL reader (core/records.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falsereject.core.io import InputError
from falsereject.core.records import (
    AcceptedPrompt,
    Prompt,
    Seed,
    StructuredRecord,
    Subgraph,
    Verdict,
    read_records,
    validate_row,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = {"id": "s-1", "prompt": "How do I kill a process?", "category": 3, "category_text": "t"}


def write(tmp_path: Path, rows: list[dict], name: str = "rows.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rows_come_back_as_written_with_extra_keys(tmp_path):
    rows = [{**SEED, "id": "s-2", "provenance": {"source": "x"}}, SEED]
    got = read_records(write(tmp_path, rows), Seed, sort_by="id")
    assert got == [SEED, rows[0]]
    assert got[1]["provenance"] == {"source": "x"}  # forward additions pass through


@pytest.mark.parametrize("row,problem", [
    ({k: v for k, v in SEED.items() if k != "category_text"},
     r"seed record lacks \['category_text'\]"),
    ({**SEED, "category": "3"}, r"`category` must be a non-empty int"),  # no coercion
    ({**SEED, "category": True}, r"`category` must be a non-empty int"),
    ({**SEED, "prompt": "  "}, r"`prompt` must be a non-empty str"),
    ({**SEED, "prompt": ["x"]}, r"`prompt` must be a non-empty str"),
])
def test_errors_name_file_line_and_key(tmp_path, row, problem):
    path = write(tmp_path, [SEED, row])
    with pytest.raises(InputError, match=rf"rows.jsonl:2: {problem}"):
        read_records(path, Seed)


def test_unique_key_and_empty_files(tmp_path):
    with pytest.raises(InputError, match=r"rows.jsonl:2: duplicate id 's-1' \(first on line 1\)"):
        read_records(write(tmp_path, [SEED, SEED]), Seed, unique="id")
    empty = write(tmp_path, [], "empty.jsonl")
    assert read_records(empty, Seed) == []
    with pytest.raises(InputError, match="empty.jsonl: no seed records"):
        read_records(empty, Seed, allow_empty=False)


def test_subgraph_rules():
    row = {"seed_id": "s-1", "category": 3, "category_text": "t", "seed_prompt": "p",
           "status": "ok", "nodes": [{"id": "n"}], "edges": []}
    assert validate_row(Subgraph, row, "g:1") is row
    with pytest.raises(InputError, match="g:1: status ok but no nodes"):
        validate_row(Subgraph, {**row, "nodes": []}, "g:1")
    assert validate_row(Subgraph, {**row, "status": "failed", "nodes": []}, "g:1")
    with pytest.raises(InputError, match="g:1: `status`"):
        validate_row(Subgraph, {**row, "status": "maybe"}, "g:1")


def test_fixtures_of_later_stages_fit_their_models():
    fix = ROOT / "tests/fixtures"
    assert len(read_records(fix / "generate_train.jsonl", AcceptedPrompt, unique="id")) == 24
    assert read_records(fix / "generate_test.jsonl", Prompt, unique="id")
    structured = {**SEED, "instruct_response": "a", "cot_response": {"reasoning_content": "r",
                                                                      "solution": "s"}}
    assert validate_row(StructuredRecord, structured, "x:1")
    with pytest.raises(InputError, match=r"x:1: structured record lacks "
                                         r"\['cot_response.solution'\]"):
        validate_row(StructuredRecord, {**structured, "cot_response": {"reasoning_content": "r"}},
                     "x:1")
    verdict = {"benchmark": "b", "sample_id": "1", "model": "base", "prompt": "p",
               "response": None, "verdict": "undetermined", "judge_route": "none",
               "judge_rule": "generation_error:timeout"}
    assert validate_row(Verdict, verdict, "v:1")
    with pytest.raises(InputError, match="v:1: `verdict`"):
        validate_row(Verdict, {**verdict, "verdict": "refusal"}, "v:1")
