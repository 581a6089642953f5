"""`make compare`: the headline metrics of every DVC experiment side by side.

Reads `dvc exp show --json` (or a saved copy, --input) and writes reports/experiments.md (a
table: one row per experiment, columns named by the conf options that differ between them,
e.g. `model`, `sft`, or an `-S` override's key, then the headline metrics) and
reports/experiments.png (compliance rate, USR benign and USR toxic per arm and experiment).
Runs no stage; an experiment that has not run the report stage shows `-`.

    python scripts/compare_experiments.py                  # dvc exp show --json -A
    python scripts/compare_experiments.py --input exp.json --out reports/experiments.md
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

HEADLINE = "reports/eval/metrics.json"
CAPABILITY = "reports/capability/metrics.json"
KL = "reports/kl/metrics.json"
GROUPS = ("model", "llm", "seeds", "sft", "judge", "experiment")  # conf groups: `<g>.name`
HEADLINE_RE = re.compile(r"^(?P<model>[a-z][a-z0-9_]*?)_(?P<metric>compliance_rate|usr_benign|"
                         r"usr_toxic)$")
MAX_PARAM_COLUMNS = 8


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _file_data(block: dict | None, path: str) -> dict[str, Any]:
    entry = (block or {}).get(path) or {}
    return entry.get("data") or {}


def _row(name: str, data: dict | None) -> dict[str, Any] | None:
    if not data:
        return None
    params = flatten(_file_data(data.get("params"), "params.yaml"))
    return {"name": name, "params": params,
            "headline": _file_data(data.get("metrics"), HEADLINE),
            "capability": _file_data(data.get("metrics"), CAPABILITY),
            "kl": _file_data(data.get("metrics"), KL)}


def experiments(show: list[dict]) -> list[dict[str, Any]]:
    """One row per baseline commit / workspace and per experiment, in `dvc exp show` order."""
    rows = []
    for base in show:
        label = "workspace" if base.get("rev") == "workspace" else (
            base.get("name") or str(base.get("rev", ""))[:7])
        row = _row(label, base.get("data"))
        if row:
            rows.append(row)
        for exp in base.get("experiments") or []:
            for rev in exp.get("revs") or []:
                row = _row(rev.get("name") or exp.get("name") or str(rev.get("rev"))[:7],
                           rev.get("data"))
                if row:
                    rows.append(row)
    return rows


def differing_columns(rows: list[dict]) -> list[tuple[str, str]]:
    """(column title, params key): conf groups whose option differs, named by the group, then
    other differing keys (overrides), named by their dotted key; a group's own keys are not
    repeated when the group's option already differs."""
    def differs(key: str) -> bool:
        return len({json.dumps(r["params"].get(key), sort_keys=True) for r in rows}) > 1

    cols = [(g, f"{g}.name") for g in GROUPS if differs(f"{g}.name")]
    taken = {g for g, _ in cols}
    keys = sorted({k for r in rows for k in r["params"]})
    for k in keys:
        if k.endswith(".name") and k.rsplit(".", 1)[0] in GROUPS:
            continue
        if k.split(".")[0] in taken or not differs(k):
            continue
        cols.append((k, k))
        if len(cols) >= MAX_PARAM_COLUMNS:
            break
    return cols


def headline_models(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for k in r["headline"]:
            m = HEADLINE_RE.match(k)
            if m and "_minus_" not in k:
                seen.setdefault(m["model"])
    return sorted(seen, key=lambda m: m != "base")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _ci(h: dict, key: str) -> str:
    if key not in h:
        return "-"
    lo, hi = h.get(f"{key}_ci_low"), h.get(f"{key}_ci_high")
    return f"{h[key]:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None
                              else "")


def render(rows: list[dict], figure: str | None) -> str:
    cols = differing_columns(rows)
    models = headline_models(rows)
    lines = ["# Experiments", "",
             f"{len(rows)} experiments from `dvc exp show --json`. Parameter columns: the conf "
             "options that differ between them. Headline metrics from the report stage "
             f"(`{HEADLINE}`; brackets: bootstrap CIs), capability accuracy from "
             f"`{CAPABILITY}`.", ""]
    head = ["experiment", *[c for c, _ in cols]]
    for m in models:
        head += [f"{m} compliance", f"{m} USR benign", f"{m} USR toxic"]
    cap_tasks = sorted({t for r in rows for m in r["capability"].values()
                        if isinstance(m, dict) for t in m})
    cap_models = [m for m in models if any(m in r["capability"] for r in rows)]
    head += [f"{m} {t} acc" for t in cap_tasks for m in cap_models]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], *["-" if r["params"].get(k) is None else
                              json.dumps(r["params"][k]).strip('"') for _, k in cols]]
        for m in models:
            cells += [_ci(r["headline"], f"{m}_{x}")
                      for x in ("compliance_rate", "usr_benign", "usr_toxic")]
        cells += [_fmt((r["capability"].get(m) or {}).get(t, {}).get("acc"))
                  for t in cap_tasks for m in cap_models]
        lines.append("| " + " | ".join(cells) + " |")
    diffs = sorted({k for r in rows for k in r["headline"]
                    if "_minus_" in k and "_ci_" not in k and "_minus_base" not in k})
    if diffs:
        lines += ["", "Paired differences against the reference arm:", "",
                  "| experiment | " + " | ".join(diffs) + " |", "|---|" + "---|" * len(diffs)]
        for r in rows:
            lines.append(f"| {r['name']} | " + " | ".join(_ci(r["headline"], k) for k in diffs)
                         + " |")
    if figure:
        lines += ["", f"![headline metrics by experiment]({figure})"]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = headline_models(rows)
    metrics = ("compliance_rate", "usr_benign", "usr_toxic")
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    width = 0.8 / max(1, len(models))
    for ax, metric in zip(axes, metrics, strict=True):
        for j, m in enumerate(models):
            xs, ys, err = [], [], [[], []]
            for i, r in enumerate(rows):
                v = r["headline"].get(f"{m}_{metric}")
                if v is None:
                    continue
                lo = r["headline"].get(f"{m}_{metric}_ci_low", v)
                hi = r["headline"].get(f"{m}_{metric}_ci_high", v)
                xs.append(i + j * width)
                ys.append(v)
                err[0].append(v - lo)
                err[1].append(hi - v)
            if xs:
                ax.bar(xs, ys, width=width, label=m, yerr=err, capsize=3)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
        ax.set_xticklabels([r["name"] for r in rows], rotation=25, ha="right", fontsize=8)
        ax.set(ylim=(0, 1.05), title=metric.replace("_", " "))
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, labels, fontsize=8)
    fig.suptitle("Headline metrics across experiments")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", help="a saved `dvc exp show --json`; default: run it")
    ap.add_argument("--out", default="reports/experiments.md")
    args = ap.parse_args(argv)
    if args.input:
        show = json.loads(Path(args.input).read_text())
    else:
        proc = subprocess.run(["dvc", "exp", "show", "--json", "-A"], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            print(f"error: dvc exp show failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
            return 2
        show = json.loads(proc.stdout)
    rows = experiments(show)
    if not rows:
        print("error: dvc exp show lists no experiment with params", file=sys.stderr)
        return 2
    out = Path(args.out)
    fig = out.with_suffix(".png")
    plot(rows, fig)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(rows, fig.name))
    print(f"compare: {len(rows)} experiments -> {out}, {fig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
