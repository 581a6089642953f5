"""The export matches the public FalseReject schema, loads with `datasets`, and rejects bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from falsereject.core.io import InputError
from falsereject.responses.export import hf_features, public_rows, write_export

FIX = Path(__file__).resolve().parent / "fixtures"


def structured(i: int) -> dict:
    return {"id": f"gen-{i:03d}", "prompt": f"How do I kill process {i}?", "category": 12,
            "category_text": "General Advice for System Intrusion",
            "instruct_response": f"Part one {i}.\n\nPart two.\n\nPart three.\n\nPart four.",
            "cot_response": {"reasoning_content": f"Safe vs unsafe {i}.",
                             "solution": "Answer."},
            "provenance": {"seed_id": "seed-012"}}


def test_public_rows_drop_ids_and_keep_id_order():
    rows = public_rows([structured(2), structured(1)], "train")
    assert [r["prompt"] for r in rows] == ["How do I kill process 1?",
                                           "How do I kill process 2?"]
    assert list(rows[0]) == ["prompt", "category", "category_text", "instruct_response",
                             "cot_response"]
    test = public_rows([structured(1)], "test")
    assert list(test[0]) == ["prompt", "category", "category_text"]


@pytest.mark.parametrize("field,value,match", [
    ("category", "12", "gen-001: `category` must be an integer"),
    ("category", True, "`category` must be an integer"),
    ("instruct_response", "", "gen-001: `instruct_response` must be a non-empty string"),
    ("cot_response", "text", "gen-001: `cot_response` must be an object"),
    ("cot_response", {"reasoning_content": "r"}, "cot_response: `solution` must be"),
])
def test_bad_rows_are_rejected_naming_the_record(field, value, match):
    rec = structured(1) | {field: value}
    with pytest.raises(InputError, match=match):
        public_rows([rec], "train")


def test_export_loads_with_datasets_with_the_public_features(tmp_path):
    import datasets

    train = public_rows([structured(i) for i in range(3)], "train")
    test = public_rows([json.loads(line) for line in
                        (FIX / "generate_test.jsonl").read_text().splitlines()], "test")
    write_export(train, "train", tmp_path / "train.jsonl", tmp_path / "train.parquet")
    write_export(test, "test", tmp_path / "test.jsonl", tmp_path / "test.parquet")
    cache = tmp_path / "hf-cache"
    for split, rows in (("train", train), ("test", test)):
        for kind in ("json", "parquet"):
            ext = "jsonl" if kind == "json" else "parquet"
            ds = datasets.load_dataset(kind, data_files=str(tmp_path / f"{split}.{ext}"),
                                       split="train", cache_dir=str(cache))
            assert ds.features == hf_features(split), (split, kind, ds.features)
            assert ds.num_rows == len(rows)
            assert ds[0] == rows[0]
    assert ds.column_names == ["prompt", "category", "category_text"]
    back = pl.read_parquet(tmp_path / "train.parquet")
    assert back.schema["cot_response"] == pl.Struct({"reasoning_content": pl.String,
                                                     "solution": pl.String})
    assert back.to_dicts() == train


def test_empty_split_still_has_its_schema(tmp_path):
    write_export([], "train", tmp_path / "t.jsonl", tmp_path / "t.parquet")
    assert (tmp_path / "t.jsonl").read_text() == ""
    df = pl.read_parquet(tmp_path / "t.parquet")
    assert df.height == 0 and df.columns == ["prompt", "category", "category_text",
                                             "instruct_response", "cot_response"]


def test_write_export_refuses_rows_outside_the_schema(tmp_path):
    row = public_rows([structured(1)], "train")[0] | {"id": "x"}
    with pytest.raises(ValueError, match="columns"):
        write_export([row], "train", tmp_path / "t.jsonl", tmp_path / "t.parquet")
