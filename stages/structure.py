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
from pathlib import Path

from falsereject.core import stage
from falsereject.core.io import write_json, write_jsonl
from falsereject.core.records import Prompt, read_records
from falsereject.llm import LLMClient, require_credentials
from falsereject.llm.metering import MeteredClient
from falsereject.responses.export import write_export
from falsereject.responses.pipeline import run_structure
from falsereject.responses.structured import load_templates


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
    train, test = (read_records(path, Prompt, unique="id", sort_by="id")
                   for path in (args.train, args.test))
    client = LLMClient("structure")
    metered = MeteredClient(client)  # usage counted from results: same on a cached re-run
    start = time.perf_counter()
    out = run_structure(metered, role, train, test, templates, p.structure, p.run.seed)
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    wall_s = round(time.perf_counter() - start, 2)  # timing.json: never in tracked metrics
    write_jsonl(args.out, out["structured"])
    write_jsonl(args.dropped, out["dropped"])
    export = Path(args.export_dir)
    write_export(out["export_train"], "train", export / "train.jsonl", export / "train.parquet")
    write_export(out["export_test"], "test", export / "test.jsonl", export / "test.parquet")
    usage, kept = metered.summary(), len(out["structured"])
    metrics = out["metrics"] | {
        "llm_requests_count": usage["requests"], "llm_tokens_count": usage["tokens"],
        "llm_requests_per_kept": round(usage["requests"] / kept, 3) if kept else None,
        "llm_tokens_per_kept": round(usage["tokens"] / kept, 1) if kept else None}
    write_json(Path(args.reports) / "metrics.json", metrics)
    write_json(Path(args.reports) / "timing.json",
               {"wall_s": wall_s, "rows": len(out["structured"]) + len(out["dropped"])})
    client.write_ledger(args.reports)
    print(f"structure: kept {metrics['train_kept']}/{metrics['train_selected']} "
          f"(drops {metrics['drops_by_reason']}), regenerations {metrics['regenerations']}, "
          f"test {metrics['test_exported']} -> {export}")


if __name__ == "__main__":
    stage.entrypoint(main)
