"""Stage `structure`'s work as data (no I/O): pick the training prompts, structure them with
an injected client (tests pass fakes), export rows and the metrics."""

from __future__ import annotations

from collections import Counter
from typing import Any

from falsereject.core.config import RoleModel, StructureConfig
from falsereject.llm import run
from falsereject.responses.export import public_rows
from falsereject.responses.responder import (
    StructureResult,
    plan_units,
    resolve_strategy,
    structure_records,
)
from falsereject.responses.structured import Templates, word_count


def select(records: list[dict[str, Any]], cfg: StructureConfig) -> list[dict[str, Any]]:
    """The first `max_records` by id (ids are content hashes: an unbiased, stable pick)."""
    return records if cfg.max_records is None else records[: cfg.max_records]


def summarize(n_input: int, selected: list[dict], result: StructureResult, n_test: int,
              n_units: int) -> dict[str, Any]:
    kept = result.kept
    trimmed = sum(_count_trimmed(r["provenance"]["structure"]["units"]) for r in kept)
    return {
        "train_input": n_input,
        "train_selected": len(selected),
        "train_kept": len(kept),
        "train_dropped": len(result.dropped),
        "kept_rate": round(len(kept) / len(selected), 4) if selected else 0.0,
        "test_exported": n_test,
        "llm_calls": result.calls,
        "regenerations": result.calls - n_units,
        "records_regenerated": sum(
            r["provenance"]["structure"]["attempts"] > _units_per_record(r) for r in kept),
        "trimmed_parts": trimmed,
        "drops_by_reason": dict(sorted(Counter(d["reason"] for d in result.dropped).items())),
        "failures_by_reason": dict(sorted(result.failures.items())),
        "mean_words_instruct": _mean([word_count(r["instruct_response"]) for r in kept]),
        "mean_words_reasoning": _mean(
            [word_count(r["cot_response"]["reasoning_content"]) for r in kept]),
        # how each kept record's reasoning trace was made (see responder.cot_trace)
        "cot_trace_counts": dict(sorted(Counter(
            r["provenance"]["structure"]["cot_trace"] for r in kept).items())),
    }


def _units_per_record(record: dict) -> int:
    units = record["provenance"]["structure"]["units"]
    return sum(len(v) if "attempts" not in v else 1 for v in units.values())


def _count_trimmed(units: dict) -> int:
    entries = [e for v in units.values() for e in ([v] if "attempts" in v else v.values())]
    return sum(bool(e.get("trimmed")) for e in entries)


def _mean(values: list[int]) -> float:
    return round(sum(values) / len(values), 1) if values else 0.0


def run_structure(client: Any, role: RoleModel, train: list[dict], test: list[dict],
                  templates: Templates, cfg: StructureConfig, run_seed: int) -> dict[str, Any]:
    """Everything the stage writes, as data (no I/O): injected client, so tests pass fakes."""
    cfg = resolve_strategy(cfg, role)
    selected = select(train, cfg)
    result = run(structure_records(client, role, selected, templates, cfg, run_seed))
    n_units = sum(len(plan_units(r, templates, cfg)) for r in selected)
    return {
        "structured": result.kept,
        "dropped": result.dropped,
        "export_train": public_rows(result.kept, "train"),
        "export_test": public_rows(test, "test"),
        "metrics": summarize(len(train), selected, result, len(test), n_units),
    }
