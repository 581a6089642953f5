"""The pipeline's own test split (`data/generate/test.jsonl`, written by the `generate` stage).

Rows follow FalseReject's public test schema (`prompt`, `category`, `category_text`) plus the
pipeline's `id` and provenance. Every generated prompt is meant to be seemingly toxic but
benign, so rows are `benign` unless they carry an explicit `label`.
"""

from __future__ import annotations

from typing import Any

from falsereject.core.config import BenchmarkConfig
from falsereject.core.io import InputError
from falsereject.evaluation.benchmarks.sample import Sample, optional_text, required_text, text_id

CITATION = "This pipeline's generated test split (see dvc.lock for the exact revision)."
REVISION = None  # versioned by DVC: the test split's hash in dvc.lock


def to_sample(record: dict[str, Any], cfg: BenchmarkConfig, *, locator: str,
              benchmark: str) -> Sample:
    prompt = required_text(record, "prompt", locator)
    label = record.get("label", "benign")
    if label not in ("benign", "toxic"):
        raise InputError(f"{locator}: label must be benign or toxic, got {label!r}")
    sid = optional_text(record, "id") or text_id("own", prompt)
    category = optional_text(record, "category_text") or optional_text(record, "category")
    return Sample(sid, prompt, label, category, benchmark, locator)
