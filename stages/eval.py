"""Stage `eval@<benchmark>`: the base student and every SFT arm (plus extra models) answer one
benchmark; the judge cascade classifies every answer; metrics with bootstrap CIs, and each
arm minus base as a paired bootstrap over the same prompts.

Reads: the benchmark's source (eval.benchmarks.<name>), the test split (own_test),
models/sft/<arm>/ for every arm of sft.arms, prompts/judge/. Params: eval, model, sft.arms,
llm.roles.judge, run.
Writes: <out-dir>/verdicts.jsonl (per sample x model: response, verdict, judge route, judge
identity hash), <out-dir>/details.json (all metrics, per-category rows, provenance),
<reports-dir>/metrics.json (flat keys for `dvc metrics`), <reports-dir>/llm_ledger.json and
timing.json.
A disabled benchmark writes empty outputs marked `enabled: false` and loads nothing.

    python stages/eval.py --benchmark own_test --test-split data/generate/test.jsonl \
        --sft-dir models/sft --prompts-dir prompts/judge --out-dir data/eval/own_test \
        --reports-dir reports/eval/own_test
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from falsereject.core import stage
from falsereject.core.config import ConfigError, Params
from falsereject.core.io import read_json, write_json, write_jsonl
from falsereject.evaluation.answers import BASE, evaluate, models_under_test
from falsereject.evaluation.benchmarks import KINDS, load_benchmark, source_description
from falsereject.evaluation.benchmarks.sources import is_pinned
from falsereject.evaluation.judge import (
    Judge,
    gate_from_calibration,
    judge_role,
    load_template,
    override_sentence,
)
from falsereject.evaluation.metrics import group_metrics, paired_metrics, per_category

log = logging.getLogger("eval")


def benchmark_metrics(rows: list[dict], models: list[str], p: Params) -> dict[str, float]:
    boot = {"n_resamples": p.eval.bootstrap_samples, "seed": p.run.seed,
            "level": p.eval.ci_level}
    out: dict[str, float] = {"n_samples": len({r["sample_id"] for r in rows})}
    for m in models:
        out.update(group_metrics([r for r in rows if r["model"] == m], m, **boot))
    base = [r for r in rows if r["model"] == BASE]
    for m in models:
        tuned = [r for r in rows if r["model"] == m]
        if m != BASE and base and tuned:
            out.update(paired_metrics(base, tuned, f"{m}_minus_base", **boot))
    return out


def run(p: Params, name: str, *, client: Any, base_id: str, arm_ids: dict[str, str],
        test_split: str | None, prompts_dir: str,
        calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate benchmark `name`; returns rows, details and flat metrics (no I/O but reads).
    `calibration`: calibrate's metrics.json; the LLM judge decides rows only when the kappa
    there reaches judge.min_kappa."""
    cfg = p.eval.benchmarks[name]
    samples = load_benchmark(name, cfg, pipeline_path=test_split,
                             max_samples=p.eval.max_samples_per_benchmark, seed=p.run.seed)
    llm_allowed, gate = gate_from_calibration(p, calibration)
    template = load_template(prompts_dir, p.judge.prompt) if llm_allowed else None
    judge = Judge(p.judge, judge_role(p), template, client, llm_allowed=llm_allowed)
    models = models_under_test(base_id, arm_ids, p.eval.generation, p.eval.extra_models,
                               arm_mode=p.sft.mode)
    from falsereject.llm import run as run_async  # imports litellm: not for disabled stages

    rows = run_async(evaluate(client, judge, models, samples,
                              system_prompt=p.eval.generation.system_prompt, seed=p.run.seed))
    names = [m.name for m in models]
    metrics = benchmark_metrics(rows, names, p)
    categories = per_category(rows)
    module = KINDS[cfg.kind]
    details = {
        "benchmark": name, "kind": cfg.kind, "enabled": True,
        "source": source_description(cfg.source, test_split),
        "source_pinned": is_pinned(cfg.source),
        "citation": module.CITATION, "upstream_revision": module.REVISION,
        "n_samples": len(samples),
        "n_benign": sum(s.label == "benign" for s in samples),
        "n_toxic": sum(s.label == "toxic" for s in samples),
        "models": [{"name": m.name, "model_id": m.role.model} for m in models],
        "judge": {"id": judge.identity, "name": p.judge.name, "mode": p.judge.mode,
                  "prompt": p.judge.prompt, "output_format": p.judge.output_format,
                  "model": judge_role(p).model, "llm_allowed": llm_allowed, "gate": gate,
                  "override": override_sentence(p.judge)},
        "metrics": metrics, "per_category": categories,
    }
    return {"rows": rows, "details": details, "metrics": metrics, "per_category": categories}


def main() -> None:
    ap = stage.parser(__doc__)
    ap.add_argument("--benchmark", required=True)
    ap.add_argument("--test-split", required=True)
    ap.add_argument("--sft-dir", required=True)
    ap.add_argument("--prompts-dir", required=True)
    ap.add_argument("--calibration", required=True, help="calibrate's metrics.json")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--reports-dir", required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    if args.benchmark not in p.eval.benchmarks:
        raise ConfigError(f"eval.benchmarks has no {args.benchmark!r}; known: "
                                f"{sorted(p.eval.benchmarks)}")
    out, rep = Path(args.out_dir), Path(args.reports_dir)
    if not p.eval.benchmarks[args.benchmark].enabled:
        write_jsonl(out / "verdicts.jsonl", [])
        write_json(out / "details.json", {"benchmark": args.benchmark, "enabled": False})
        write_json(rep / "metrics.json", {"enabled": False})
        write_json(rep / "llm_ledger.json", {})
        write_json(rep / "timing.json", {})
        print(f"eval@{args.benchmark}: disabled (eval.benchmarks.{args.benchmark}.enabled)")
        return

    from falsereject.llm import LLMClient, require_credentials
    from falsereject.llm.local.student import register_student

    calibration = read_json(args.calibration)
    judge_roles = [judge_role(p)] if gate_from_calibration(p, calibration)[0] else []
    require_credentials([*judge_roles, *p.eval.extra_models])
    start = time.perf_counter()
    base_id = register_student(p.model)
    arm_ids = {arm: register_student(p.model, Path(args.sft_dir) / arm) for arm in p.sft.arms}
    client = LLMClient(f"eval@{args.benchmark}")
    result = run(p, args.benchmark, client=client, base_id=base_id, arm_ids=arm_ids,
                 test_split=args.test_split, prompts_dir=args.prompts_dir,
                 calibration=calibration)
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    wall = time.perf_counter() - start
    write_jsonl(out / "verdicts.jsonl", result["rows"])
    write_json(out / "details.json", result["details"])
    write_json(rep / "metrics.json", {"enabled": True, **result["metrics"]})
    client.write_ledger(rep)
    write_json(rep / "timing.json", {"wall_s": round(wall, 2),
                                     "rows": len(result["rows"])})
    m = result["metrics"]
    for name in (BASE, *arm_ids):
        print(f"eval@{args.benchmark} {name}: "
              + ", ".join(f"{k.removeprefix(name + '_')}={m[k]:.3f}" for k in
                          (f"{name}_compliance_rate", f"{name}_usr_benign",
                           f"{name}_usr_toxic", f"{name}_undetermined_share",
                           f"{name}_length_limited_share") if k in m))
    print(f"eval@{args.benchmark}: {result['details']['judge']['gate']}")
    print(f"eval@{args.benchmark}: {len(result['rows'])} verdicts in {wall:.1f}s")


if __name__ == "__main__":
    stage.entrypoint(main)
