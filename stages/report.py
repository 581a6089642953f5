"""Stage `report`: one human-readable summary of the evaluation, base and fine-tuned side by
side, with the judge calibration numbers and figures as PNG (renders offline).

Reads: <eval-dir>/*/details.json (every eval@<benchmark>), <calibration> (calibrate's
details.json).
Params: experiment.
Writes: <out-dir>/summary.md, <out-dir>/compliance_vs_usr.png, <out-dir>/per_category.png,
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
from falsereject.core.io import InputError, read_json, write_text
from falsereject.evaluation.report import (
    CATEGORY_FIELDS,
    MODEL_FIELDS,
    category_rows,
    model_rows,
    plot_compliance_vs_usr,
    plot_per_category,
    render_summary,
)

FIGURES = {"Compliance rate vs USR, base vs fine-tuned": "compliance_vs_usr.png",
           "Per-category USR, base vs fine-tuned": "per_category.png"}


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


def run(details: list[dict[str, Any]], calibration: dict[str, Any] | None, experiment: str,
        out_dir: Path) -> str:
    models, categories = model_rows(details), category_rows(details)
    plot_compliance_vs_usr(models, out_dir / FIGURES["Compliance rate vs USR, base vs "
                                                     "fine-tuned"])
    plot_per_category(categories, out_dir / "per_category.png")
    write_text(out_dir / "models.csv", to_csv(models, MODEL_FIELDS))
    write_text(out_dir / "per_category.csv", to_csv(categories, CATEGORY_FIELDS))
    summary = render_summary(details, calibration, experiment=experiment, figures=FIGURES)
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
    run(load_details(args.eval_dir), calibration, p.experiment.name, Path(args.out_dir))
    print(f"report: {args.out_dir}/summary.md")


if __name__ == "__main__":
    stage.entrypoint(main)
