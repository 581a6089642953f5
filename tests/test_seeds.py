"""Seeds: sources, normalization, selection, and bad input that names file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from falsereject.core.config import SeedsConfig
from falsereject.core.io import InputError
from falsereject.core.taxonomy import CATEGORIES
from falsereject.generation.seeds import load_seeds, select, stable_id

ROOT = Path(__file__).resolve().parents[1]


def cfg(**kw) -> SeedsConfig:
    base = dict(name="t", source="jsonl", path=None, hf_id=None, hf_revision=None,
                hf_split=None, columns={"id": "id", "prompt": "prompt", "category": "category"},
                category_format="id", max_per_category=None, max_seeds=None)
    base.update(kw)
    return SeedsConfig(**base)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def test_team_seed_file_covers_all_44_categories_at_least_twice():
    recs = load_seeds(cfg(path=str(ROOT / "resources/seeds.jsonl")))
    per_cat = {c: sum(r["category"] == c for r in recs) for c in CATEGORIES}
    assert len(per_cat) == 44 and min(per_cat.values()) >= 2
    assert [r["id"] for r in recs] == sorted(r["id"] for r in recs)
    assert set(recs[0]) == {"id", "prompt", "category", "category_text", "source"}


def test_jsonl_with_column_mapping_and_category_names(tmp_path):
    p = write(tmp_path, "s.jsonl",
              json.dumps({"text": "b prompt", "cat": "Self-Harm"}) + "\n\n"
              + json.dumps({"text": "a prompt", "cat": 12}) + "\n")
    recs = load_seeds(cfg(path=str(p), columns={"prompt": "text", "category": "cat"}))
    assert [r["category"] for r in recs] == sorted(
        [6, 12], key=lambda c: stable_id("b prompt" if c == 6 else "a prompt"))
    assert all(r["id"].startswith("s-") for r in recs)
    assert {r["category_text"] for r in recs} == {"Self-Harm", CATEGORIES[12]}


def test_csv_source(tmp_path):
    p = write(tmp_path, "s.csv", "id,q,c\nx2,second,7\nx1,first,Violent Crimes\n")
    recs = load_seeds(cfg(source="csv", path=str(p), columns={"id": "id", "prompt": "q",
                                                              "category": "c"}))
    assert [r["id"] for r in recs] == ["x1", "x2"]
    assert all(r["category"] == 7 for r in recs)


def test_hf_source_loads_a_local_dataset_directory(tmp_path):
    import polars as pl

    d = tmp_path / "hfset" / "data"
    d.mkdir(parents=True)
    pl.DataFrame({"question_id": ["q1", "q2"], "turns": [["first turn"], ["other turn"]],
                  "category": ["3", "44"]}).write_parquet(d / "train-00000-of-00001.parquet")
    recs = load_seeds(cfg(source="hf", path=None, hf_id=str(tmp_path / "hfset"),
                          hf_revision="main", hf_split="train",
                          columns={"id": "question_id", "prompt": "turns",
                                   "category": "category"}))
    assert [(r["id"], r["prompt"], r["category"]) for r in recs] == [
        ("q1", "first turn", 3), ("q2", "other turn", 44)]


def test_selection_is_deterministic_and_round_robin():
    recs = [{"id": f"{c}-{i}", "category": c} for c in (1, 2, 3) for i in range(3)]
    picked = select(recs, max_per_category=2, max_seeds=4)
    assert [r["id"] for r in picked] == ["1-0", "1-1", "2-0", "3-0"]


@pytest.mark.parametrize("content,match", [
    ('{"id": "a", "prompt": "x", "category": 1}\n{"id": "b", "prompt": "y", ', r"s\.jsonl:2: malformed JSON"),
    ("", r"s\.jsonl: no seed rows"),
    ('{"id": "a", "prompt": "x", "category": 99}\n', r"s\.jsonl:1: unknown category 99"),
    ('{"id": "a", "prompt": "x", "category": "Knitting"}\n', r"s\.jsonl:1: unknown category 'Knitting'"),
    ('{"id": "a", "category": 1}\n', r"s\.jsonl:1: missing column 'prompt'"),
    ('{"id": "a", "prompt": "  ", "category": 1}\n', r"s\.jsonl:1: .*non-empty string"),
    ('{"id": "a", "prompt": "x", "category": 1}\n{"id": "a", "prompt": "y", "category": 2}\n',
     r"s\.jsonl:2: duplicate seed id 'a'"),
    (b'{"id": "a", "prompt": "x", "category": 1}\n{"id": "b", "prompt": "\xff", "category": 1}\n',
     r"s\.jsonl:2: invalid UTF-8"),
])
def test_bad_input_names_file_and_line(tmp_path, content, match):
    p = write(tmp_path, "s.jsonl", content)
    with pytest.raises(InputError, match=match):
        load_seeds(cfg(path=str(p)))


def test_stage_writes_nothing_on_bad_input(tmp_path):
    bad = write(tmp_path, "bad.jsonl", '{"id": "a", "prompt": "x", "category": 1}\nnot json\n')
    params = (ROOT / "params.yaml").read_text().replace(
        "path: resources/seeds.jsonl", f"path: {bad}")
    pfile = write(tmp_path, "params.yaml", params)
    out, report = tmp_path / "out" / "seeds.jsonl", tmp_path / "out" / "summary.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages/seeds.py"), "--params", str(pfile),
         "--out", str(out), "--report", str(report)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 2
    assert f"{bad}:2: malformed JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not report.exists()


def test_only_ids_restricts_and_unknown_ids_are_named():
    path = str(ROOT / "resources/seeds.jsonl")
    recs = load_seeds(cfg(path=path, only_ids=["seed-021", "seed-016"]))
    assert [r["id"] for r in recs] == ["seed-016", "seed-021"]
    with pytest.raises(InputError, match="seed-999"):
        load_seeds(cfg(path=path, only_ids=["seed-999"]))
