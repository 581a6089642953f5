"""Your own prompts by config alone: a JSONL or CSV file (or any HF dataset) with a column
mapping, labelled benign/toxic for the whole file (`label`) or per row (`columns.label` values
mapped through `label_values`, e.g. {safe: benign, unsafe: toxic}).
"""

from __future__ import annotations

from typing import Any

from falsereject.core.config import BenchmarkConfig
from falsereject.core.io import InputError
from falsereject.evaluation.benchmarks.sample import Sample, optional_text, required_text, text_id

CITATION = "User-provided prompt file (see the benchmark's source in params.yaml)."
REVISION = None  # versioned by whoever owns the file


def to_sample(record: dict[str, Any], cfg: BenchmarkConfig, *, locator: str,
              benchmark: str) -> Sample:
    cols = cfg.columns
    prompt = required_text(record, cols["prompt"], locator)
    if cfg.label is not None:
        label = cfg.label
    else:
        raw = optional_text(record, cols["label"])
        if raw not in cfg.label_values:
            raise InputError(f"{locator}: {cols['label']}={raw!r} is not one of the configured "
                             f"label_values {sorted(cfg.label_values)}")
        label = cfg.label_values[raw]
    sid = optional_text(record, cols.get("id")) or text_id(benchmark, prompt)
    return Sample(sid, prompt, label, optional_text(record, cols.get("category")), benchmark,
                  locator)
