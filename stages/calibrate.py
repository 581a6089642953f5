"""Stage `calibrate`: agreement of each judge configuration with labelled answers, on the
development file and the held-out file separately; publishes the LLM judge's kappa that gates
the eval cascade. Runs before every eval stage.

Configurations (src/falsereject/evaluation/calibration.py): `fast` (the three-class fast path),
`llm` (the LLM judge alone), `cascade` (fast path then LLM judge, ungated) and `judge` (the
configured `judge` option as eval runs it, gate included).
Reads: eval.calibration.dev_path, eval.calibration.heldout_path, prompts/judge/.
Params: judge, eval.calibration, llm.roles.judge, run.
Writes: <out> (per file x row x configuration: verdict, route, rule, judge output, identity),
<reports-dir>/metrics.json (flat `<file>_<configuration>_<metric>` keys plus `llm_gate_open` and
`llm_gate_kappa`, which eval reads), <reports-dir>/details.json (the same with confusion matrices
and the gate sentence), <reports-dir>/llm_ledger.json and timing.json.

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
    FILES,
    flat_metrics,
    label_scheme,
    load_calibration,
    main_agreement,
    score_rows,
    stratified_subset,
    summarize,
)
from falsereject.evaluation.judge import Judge, judge_role, llm_gate, load_template


def run(p: Params, *, client: Any, prompts_dir: str
        ) -> tuple[list[dict], dict[str, Any], dict[str, Any]]:
    """(records, details, flat metrics): every configuration on both files, then the gate."""
    from falsereject.llm import run as run_async

    cal, cfg = p.eval.calibration, p.judge
    role = judge_role(p)
    template = load_template(prompts_dir, cfg.prompt)
    variants = {mode: Judge(cfg.model_copy(update={"mode": mode}), role, template, client)
                for mode in ("fast", "llm", "cascade")}
    paths = {"dev": cal.dev_path, "heldout": cal.heldout_path}
    rows = {f: load_calibration(paths[f]) for f in FILES}
    records: dict[str, list[dict]] = {}
    for f in FILES:
        subset = stratified_subset(rows[f], cal.llm_max_rows, p.run.seed)
        records[f] = run_async(score_rows([("fast", variants["fast"], rows[f]),
                                           ("llm", variants["llm"], subset),
                                           ("cascade", variants["cascade"], subset)]))
    ids = {k: j.identity for k, j in variants.items()}
    gate_summary = summarize(records[cal.gate_file], label_scheme(rows[cal.gate_file]), ids)
    kappa = main_agreement(gate_summary["llm"])["kappa"]
    source = f"the {cal.gate_file} calibration file ({paths[cal.gate_file]})"
    is_open, sentence = llm_gate(cfg, kappa, source)
    configured = Judge(cfg, role, template, client, llm_allowed=is_open)
    ids["judge"] = configured.identity
    summaries = {}
    for f in FILES:
        records[f] += run_async(score_rows([("judge", configured, rows[f])]))
        summaries[f] = {**summarize(records[f], label_scheme(rows[f]), ids), "file": paths[f]}
    gate = {"open": is_open, "kappa": kappa, "file": cal.gate_file, "path": paths[cal.gate_file],
            "min_kappa": cfg.min_kappa, "sentence": sentence, "judge_id": configured.identity}
    details = {"judge": {"name": cfg.name, "mode": cfg.mode, "prompt": cfg.prompt,
                         "model": role.model}, "gate": gate, "files": summaries}
    out = sorted(({"file": f, **r} for f in FILES for r in records[f]),
                 key=lambda r: (r["file"], r["id"], r["configuration"]))
    return out, details, flat_metrics(summaries, gate)


def headline(details: dict[str, Any]) -> str:
    lines = []
    for f, summary in details["files"].items():
        for name in ("fast", "llm", "cascade", "judge"):
            block = summary.get(name)
            if not block:
                continue
            agree = main_agreement(block)
            spc = agree["per_class"].get("safe_partial_compliance", {})
            lines.append(
                f"calibrate {f:7s} {name:8s} n={agree['n']} accuracy={agree['accuracy']:.3f} "
                f"kappa={_f(agree['kappa'])} coverage={agree['coverage']:.3f} "
                f"refusal_accuracy={block['refusal_axis']['accuracy']:.3f} "
                f"spc_precision={_f(spc.get('precision'))} spc_recall={_f(spc.get('recall'))}")
    lines.append(f"calibrate gate: {details['gate']['sentence']}")
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    ap = stage.parser(__doc__)
    ap.add_argument("--prompts-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reports-dir", required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    from falsereject.llm import LLMClient, require_credentials

    require_credentials([judge_role(p)])
    start = time.perf_counter()
    client = LLMClient("calibrate")
    records, details, metrics = run(p, client=client, prompts_dir=args.prompts_dir)
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    write_jsonl(args.out, records)
    write_json(Path(args.reports_dir) / "details.json", details)
    write_json(Path(args.reports_dir) / "metrics.json", metrics)
    client.write_ledger(args.reports_dir)
    write_json(Path(args.reports_dir) / "timing.json",
               {"wall_s": round(time.perf_counter() - start, 2), "rows": len(records)})
    print(headline(details))


if __name__ == "__main__":
    stage.entrypoint(main)
