"""Stage `structure`: structured responses for the training prompts, and the public-schema export.

Reads the accepted train/test prompts of `generate`; the responder LLM (params `llm`, role
`responder`) writes `instruct_response` (four parts) and `cot_response` (reasoning + four-part
solution) for each training prompt (params `structure`; prompt templates in a versioned file).
The checker gates every response; failures are regenerated with new seeds, then dropped with
the reason. Writes the structured records with provenance, the dropped ones, the export (train
and test, JSONL + Parquet, exactly the FalseReject schema), metrics and the LLM ledger.

    python stages/structure.py --train data/generate/train.jsonl --test data/generate/test.jsonl \
        --prompts prompts/structure/responder_v1.yaml --out data/structure/train.jsonl \
        --dropped data/structure/dropped.jsonl --export-dir data/export --reports reports/structure
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from falsereject.core import stage
from falsereject.core.config import RoleModel, StructureConfig
from falsereject.core.io import InputError, read_jsonl_numbered, write_json, write_jsonl
from falsereject.llm import LLMClient, require_credentials, run
from falsereject.responses.export import public_rows, write_export
from falsereject.responses.responder import (
    StructureResult,
    plan_units,
    resolve_strategy,
    structure_records,
)
from falsereject.responses.structured import Templates, load_templates, word_count

REQUIRED = {"id": str, "prompt": str, "category": int, "category_text": str}


def read_prompts(path: str | Path) -> list[dict[str, Any]]:
    """Accepted prompts of `generate`, validated (file:line on error), sorted by id."""
    seen: dict[str, int] = {}
    rows = []
    for line, row in read_jsonl_numbered(path):
        for key, kind in REQUIRED.items():
            value = row.get(key)
            if not isinstance(value, kind) or isinstance(value, bool) or value == "":
                raise InputError(f"{path}:{line}: `{key}` must be a non-empty {kind.__name__}")
        if row["id"] in seen:
            raise InputError(f"{path}:{line}: duplicate id {row['id']!r} (first on line "
                             f"{seen[row['id']]})")
        seen[row["id"]] = line
        rows.append(row)
    return sorted(rows, key=lambda r: r["id"])


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


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--train", "--test", "--prompts", "--out", "--dropped", "--export-dir",
                 "--reports"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    role = p.llm.roles.responder
    require_credentials([role])
    templates = load_templates(args.prompts)
    train, test = read_prompts(args.train), read_prompts(args.test)
    client = LLMClient("structure")
    start = time.perf_counter()
    out = run_structure(client, role, train, test, templates, p.structure, p.run.seed)
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    wall_s = round(time.perf_counter() - start, 2)  # timing.json: never in tracked metrics
    write_jsonl(args.out, out["structured"])
    write_jsonl(args.dropped, out["dropped"])
    export = Path(args.export_dir)
    write_export(out["export_train"], "train", export / "train.jsonl", export / "train.parquet")
    write_export(out["export_test"], "test", export / "test.jsonl", export / "test.parquet")
    metrics = out["metrics"]
    write_json(Path(args.reports) / "metrics.json", metrics)
    write_json(Path(args.reports) / "timing.json",
               {"wall_s": wall_s, "rows": len(out["structured"]) + len(out["dropped"])})
    client.write_ledger(args.reports)
    print(f"structure: kept {metrics['train_kept']}/{metrics['train_selected']} "
          f"(drops {metrics['drops_by_reason']}), regenerations {metrics['regenerations']}, "
          f"test {metrics['test_exported']} -> {export}")


if __name__ == "__main__":
    stage.entrypoint(main)
