"""Export train/test in the public FalseReject schema (AmazonScience/FalseReject) as JSONL + Parquet.

train rows: prompt (str), category (int), category_text (str), instruct_response (str),
cot_response {reasoning_content (str), solution (str)}; test rows: prompt, category,
category_text. Rows keep the pipeline's id order (stable), but carry no id: the files load
with `datasets.load_dataset("json"/"parquet", ...)` exactly like the public release.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from falsereject.core.io import InputError, atomic_path, write_text

TRAIN_COLUMNS = ("prompt", "category", "category_text", "instruct_response", "cot_response")
TEST_COLUMNS = ("prompt", "category", "category_text")
COT_FIELDS = ("reasoning_content", "solution")


def _str(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: `{key}` must be a non-empty string")
    return value


def _category(row: dict, where: str) -> int:
    value = row.get("category")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: `category` must be an integer, got {value!r}")
    return value


def public_row(record: dict[str, Any], split: str) -> dict[str, Any]:
    """One record in the public schema; bad fields raise naming the record id."""
    where = f"record {record.get('id', '?')}"
    row = {"prompt": _str(record, "prompt", where), "category": _category(record, where),
           "category_text": _str(record, "category_text", where)}
    if split == "test":
        return row
    row["instruct_response"] = _str(record, "instruct_response", where)
    cot = record.get("cot_response")
    if not isinstance(cot, dict):
        raise InputError(f"{where}: `cot_response` must be an object with {COT_FIELDS}")
    row["cot_response"] = {k: _str(cot, k, f"{where} cot_response") for k in COT_FIELDS}
    return row


def public_rows(records: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, not {split!r}")
    return [public_row(r, split) for r in sorted(records, key=lambda r: str(r.get("id", "")))]


def polars_schema(split: str):
    import polars as pl

    schema = {"prompt": pl.String, "category": pl.Int64, "category_text": pl.String}
    if split == "train":
        schema["instruct_response"] = pl.String
        schema["cot_response"] = pl.Struct({k: pl.String for k in COT_FIELDS})
    return schema


def arrow_schema(split: str):
    import pyarrow as pa

    fields = [("prompt", pa.string()), ("category", pa.int64()), ("category_text", pa.string())]
    if split == "train":
        fields += [("instruct_response", pa.string()),
                   ("cot_response", pa.struct([(k, pa.string()) for k in COT_FIELDS]))]
    return pa.schema(fields)


def hf_features(split: str):
    """The `datasets.Features` of the public release for `split` (for checks and loaders)."""
    from datasets import Features, Value

    feats = {"prompt": Value("string"), "category": Value("int64"),
             "category_text": Value("string")}
    if split == "train":
        feats["instruct_response"] = Value("string")
        feats["cot_response"] = {k: Value("string") for k in COT_FIELDS}
    return Features(feats)


def write_export(rows: list[dict[str, Any]], split: str, jsonl_path: str | Path,
                 parquet_path: str | Path) -> None:
    """Both files of one split, atomically. An empty split still gets its typed schema."""
    import polars as pl
    import pyarrow.parquet as pq

    columns = TRAIN_COLUMNS if split == "train" else TEST_COLUMNS
    for i, row in enumerate(rows):
        if tuple(row) != columns:
            raise ValueError(f"{split} row {i}: columns {tuple(row)} != {columns}")
    df = pl.DataFrame(rows, schema=polars_schema(split))
    # column order as in the public release (write_jsonl would sort the keys)
    write_text(jsonl_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    # polars writes large_string; the public release (and `datasets`) use plain string
    table = df.to_arrow().cast(arrow_schema(split))
    with atomic_path(parquet_path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=False)
