"""Stage `calibrate`: agreement of each judge configuration (fast detector alone, LLM judge
alone, cascade) with the labelled calibration file, computed on every run.

Reads: eval.calibration.path (default resources/judge_calibration.jsonl), prompts/judge/.
Params: eval, llm.roles.judge, run.
Writes: <out> (per row x configuration: verdict, route, rule, judge output, judge identity),
<reports-dir>/metrics.json (flat: accuracy, kappa, coverage, per-class precision/recall of each
configuration), <reports-dir>/details.json (the same plus confusion matrices, three-class and
binary), <reports-dir>/llm_ledger.json and timing.json.

    python stages/calibrate.py --prompts-dir prompts/judge \
        --out data/calibrate/verdicts.jsonl --reports-dir reports/calibrate
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from falsereject.core import stage
from falsereject.core.config import Params
from falsereject.core.io import write_json, write_jsonl
from falsereject.evaluation.calibration import (
    flat_metrics,
    judge_rows,
    judges,
    label_scheme,
    load_calibration,
    stratified_subset,
    summarize,
)
from falsereject.evaluation.judge import load_template


def run(p: Params, *, client: Any, prompts_dir: str) -> tuple[list[dict], dict[str, Any]]:
    all_rows = load_calibration(p.eval.calibration.path)
    scheme = label_scheme(all_rows)
    rows = stratified_subset(all_rows, p.eval.calibration.llm_max_rows, p.run.seed)
    template = load_template(prompts_dir, p.eval.judge.prompt)
    configured = judges(p.eval.judge, p.llm.roles.judge, template, client)
    from falsereject.llm import run as run_async

    records = run_async(judge_rows(rows, configured, all_rows))
    metrics = summarize(records, scheme, {k: j.identity for k, j in configured.items()})
    metrics["file"] = p.eval.calibration.path
    return records, metrics


def headline(metrics: dict[str, Any]) -> str:
    lines = []
    for name in ("fast", "llm", "cascade", "fast_all_rows"):
        block = metrics.get(name)
        if not block:
            continue
        agree = block.get("three_class") or block["binary"]
        kappa = agree["kappa"]
        lines.append(f"calibrate {name:13s} n={agree['n']} accuracy={agree['accuracy']:.3f} "
                     f"kappa={'n/a' if kappa is None else f'{kappa:.3f}'} "
                     f"coverage={agree['coverage']:.3f} binary_accuracy="
                     f"{block['binary']['accuracy']:.3f}")
    return "\n".join(lines)


def main() -> None:
    ap = stage.parser(__doc__)
    ap.add_argument("--prompts-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reports-dir", required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    from falsereject.llm import LLMClient, require_credentials

    require_credentials([p.llm.roles.judge])
    start = time.perf_counter()
    client = LLMClient("calibrate")
    records, metrics = run(p, client=client, prompts_dir=args.prompts_dir)
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    write_jsonl(args.out, records)
    write_json(Path(args.reports_dir) / "details.json", metrics)
    write_json(Path(args.reports_dir) / "metrics.json", flat_metrics(metrics))
    client.write_ledger(args.reports_dir)
    write_json(Path(args.reports_dir) / "timing.json",
               {"wall_s": round(time.perf_counter() - start, 2), "rows": metrics["n_rows"]})
    print(headline(metrics))


if __name__ == "__main__":
    stage.entrypoint(main)
