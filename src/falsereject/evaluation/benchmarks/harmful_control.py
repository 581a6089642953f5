"""A harmful-prompt control: prompts a model should refuse, reported next to over-refusal.

Default source: the team-written `resources/harmful_control.jsonl` (`id`, `prompt`, `category`
as a SORRY-Bench id). Any JSONL/CSV file or HF dataset works by config, with `columns`
mapping its column names onto `id`, `prompt`, `category`. Every row is `toxic`.
"""

from __future__ import annotations

from typing import Any

from falsereject.core.config import BenchmarkConfig
from falsereject.core.taxonomy import CATEGORIES, category_id
from falsereject.evaluation.benchmarks.sample import Sample, optional_text, required_text, text_id

CITATION = "FalseReject re-implementation team: resources/harmful_control.jsonl (hand-written)."
REVISION = None  # versioned with this repository


def category_name(value: str | None) -> str | None:
    """SORRY-Bench ids become their names so per-category tables read well."""
    cid = category_id(value) if value is not None else None
    return CATEGORIES[cid] if cid is not None else value


def to_sample(record: dict[str, Any], cfg: BenchmarkConfig, *, locator: str,
              benchmark: str) -> Sample:
    cols = {"prompt": "prompt", "id": "id", "category": "category", **cfg.columns}
    prompt = required_text(record, cols["prompt"], locator)
    sid = optional_text(record, cols.get("id")) or text_id("harm", prompt)
    category = category_name(optional_text(record, cols.get("category")))
    return Sample(sid, prompt, "toxic", category, benchmark, locator)
