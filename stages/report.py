"""Stage `report`: one human-readable summary of the evaluation, base and every SFT arm side by
side, headed by the arm comparison (compliance rate, USR benign, USR toxic with bootstrap CIs
and paired differences against the reference arm), with the judge calibration numbers and
figures as PNG (renders offline).

Reads: <eval-dir>/*/details.json and verdicts.jsonl (every eval@<benchmark>), <calibration>
(calibrate's details.json).
Params: experiment, report, eval.bootstrap_samples, eval.ci_level, run.
Writes: <out-dir>/summary.md, <out-dir>/metrics.json (the headline numbers, for `dvc exp
show`), <out-dir>/headline.png, <out-dir>/compliance_vs_usr.png, <out-dir>/per_category.png,
<out-dir>/models.csv and <out-dir>/per_category.csv (data of the `dvc plots` definitions).

    python stages/report.py --eval-dir data/eval --calibration reports/calibrate/details.json \
        --out-dir reports/eval
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from falsereject.core import stage
from falsereject.core.config import ConfigError, Params
from falsereject.core.io import InputError, read_json, read_jsonl, write_json, write_text
from falsereject.evaluation.headline import (
    headline_metrics,
    models_in,
    plot_headline,
    render_headline,
)
from falsereject.evaluation.report import (
    CATEGORY_FIELDS,
    MODEL_FIELDS,
    category_rows,
    model_rows,
    plot_compliance_vs_usr,
    plot_per_category,
    render_summary,
)

FIGURES = {"Compliance rate vs USR, base and arms": "compliance_vs_usr.png",
           "Per-category USR, base and arms": "per_category.png"}


def to_csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in fields})
    return buf.getvalue()


def load_details(eval_dir: str | Path) -> list[dict[str, Any]]:
    paths = sorted(Path(eval_dir).glob("*/details.json"))
    if not paths:
        raise InputError(f"{eval_dir}: no */details.json; run the eval@<benchmark> stages first")
    return [read_json(p) for p in paths]


def headline(p: Params, eval_dir: Path) -> dict[str, Any]:
    """Headline metrics from the configured benign and toxic benchmarks' verdicts."""
    cfg = p.report
    rows = {}
    for key in (cfg.benign, cfg.toxic):
        if key not in p.eval.benchmarks or not p.eval.benchmarks[key].enabled:
            raise ConfigError(f"report: eval.benchmarks.{key} must exist and be enabled (it "
                              "feeds the headline; see report.benign / report.toxic)")
        rows[key] = read_jsonl(eval_dir / key / "verdicts.jsonl")
    m = headline_metrics(rows[cfg.benign], rows[cfg.toxic], cfg.reference_arm,
                         n_resamples=p.eval.bootstrap_samples, seed=p.run.seed,
                         level=p.eval.ci_level)
    return {"metrics": m, "models": models_in([*rows[cfg.benign], *rows[cfg.toxic]]),
            "cfg": cfg, "level": p.eval.ci_level}


def run(details: list[dict[str, Any]], calibration: dict[str, Any] | None, experiment: str,
        out_dir: Path, head: dict[str, Any] | None = None) -> str:
    """Write the summary and figures; `head`: the arm headline (`headline()`), if any."""
    head_lines: list[str] = []
    if head is not None:
        cfg = head["cfg"]
        plot_headline(head["metrics"], head["models"], out_dir / "headline.png",
                      f"SFT arms: {cfg.benign} (benign) and {cfg.toxic} (toxic)")
        write_json(out_dir / "metrics.json", head["metrics"])
        head_lines = render_headline(head["metrics"], head["models"], cfg.reference_arm,
                                     cfg.benign, cfg.toxic, "headline.png", head["level"])
    models, categories = model_rows(details), category_rows(details)
    plot_compliance_vs_usr(models, out_dir / "compliance_vs_usr.png")
    plot_per_category(categories, out_dir / "per_category.png")
    write_text(out_dir / "models.csv", to_csv(models, MODEL_FIELDS))
    write_text(out_dir / "per_category.csv", to_csv(categories, CATEGORY_FIELDS))
    summary = render_summary(details, calibration, experiment=experiment, figures=FIGURES,
                             headline=head_lines)
    write_text(out_dir / "summary.md", summary)
    return summary


def main() -> None:
    ap = stage.parser(__doc__)
    ap.add_argument("--eval-dir", required=True)
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    calibration = read_json(args.calibration)
    run(load_details(args.eval_dir), calibration, p.experiment.name, Path(args.out_dir),
        headline(p, Path(args.eval_dir)))
    print(f"report: {args.out_dir}/summary.md")


if __name__ == "__main__":
    stage.entrypoint(main)
