"""The arm comparison at the top of the report: every model x (compliance rate, USR benign, USR
toxic) with bootstrap CIs, and each arm minus the reference arm as a paired bootstrap over the
same prompts (the paper's central comparison: general mixture vs general + FalseReject).

Benign metrics come from one benchmark (e.g. the benign-but-edgy set), the toxic one from
another (the harmful control). Pure functions over verdict rows; the report stage does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from falsereject.core.plotting import pyplot
from falsereject.evaluation.metrics import group_metrics, paired_metrics

METRICS = ("compliance_rate", "usr_benign", "usr_toxic")
LABELS = {"compliance_rate": "compliance rate", "usr_benign": "USR benign",
          "usr_toxic": "USR toxic"}


def _source(metric: str) -> str:
    return "toxic" if metric == "usr_toxic" else "benign"


def models_in(rows: Sequence[dict]) -> list[str]:
    """Model names in first-seen order, base first."""
    seen = list(dict.fromkeys(r["model"] for r in rows))
    return sorted(seen, key=lambda m: m != "base")


def headline_metrics(benign_rows: Sequence[dict], toxic_rows: Sequence[dict], reference: str,
                     *, n_resamples: int, seed: int, level: float) -> dict[str, Any]:
    """Flat metrics `<model>_<metric>` (+ `_ci_low/_ci_high`) and `<model>_minus_<reference>_
    <metric>` (paired over the prompts both answered), benign metrics from `benign_rows`, USR
    toxic from `toxic_rows`."""
    boot = {"n_resamples": n_resamples, "seed": seed, "level": level}
    src = {"benign": [r for r in benign_rows if r["label"] == "benign"],
           "toxic": [r for r in toxic_rows if r["label"] == "toxic"]}
    out: dict[str, Any] = {}
    models = models_in([*src["benign"], *src["toxic"]])
    for m in models:
        for metric in METRICS:
            rows = [r for r in src[_source(metric)] if r["model"] == m]
            got = group_metrics(rows, m, **boot)
            for suffix in ("", "_ci_low", "_ci_high"):
                key = f"{m}_{metric}{suffix}"
                if key in got:
                    out[key] = got[key]
        out[f"{m}_n_benign"] = sum(r["model"] == m for r in src["benign"])
        out[f"{m}_n_toxic"] = sum(r["model"] == m for r in src["toxic"])
    ref = {lab: [r for r in rows if r["model"] == reference] for lab, rows in src.items()}
    for m in models:
        if m == reference or not (ref["benign"] or ref["toxic"]):
            continue
        for lab, rows in src.items():
            mine = [r for r in rows if r["model"] == m]
            diff = paired_metrics(ref[lab], mine, f"{m}_minus_{reference}", **boot)
            keep = ("usr_toxic",) if lab == "toxic" else ("compliance_rate", "usr_benign")
            out.update({k: v for k, v in diff.items()
                        if any(k.startswith(f"{m}_minus_{reference}_{x}") for x in keep)})
    return out


def _cell(m: dict, key: str) -> str:
    if key not in m:
        return "-"
    lo, hi = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
    return f"{m[key]:.2f}{ci}"


def excludes_zero(m: dict, key: str) -> bool | None:
    lo, hi = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    if lo is None or hi is None:
        return None
    return lo > 0 or hi < 0


def render_headline(m: dict, models: Sequence[str], reference: str, benign: str, toxic: str,
                    figure: str, level: float) -> list[str]:
    pct = f"{level:.0%}"
    lines = ["## Headline: SFT arms", "",
             f"Compliance rate and USR benign on `{benign}`, USR toxic on `{toxic}`; brackets: "
             f"bootstrap {pct} CIs over prompts. Every arm starts from the base student.", "",
             "| model | N benign | compliance rate | USR benign | N toxic | USR toxic |",
             "|---|---|---|---|---|---|"]
    for name in models:
        lines.append(f"| {name} | {m.get(f'{name}_n_benign', 0)} | "
                     f"{_cell(m, f'{name}_compliance_rate')} | {_cell(m, f'{name}_usr_benign')} "
                     f"| {m.get(f'{name}_n_toxic', 0)} | {_cell(m, f'{name}_usr_toxic')} |")
    others = [n for n in models if n != reference]
    if any(f"{n}_minus_{reference}_usr_benign" in m or f"{n}_minus_{reference}_usr_toxic" in m
           for n in others):
        lines += ["", f"Minus the `{reference}` arm (paired bootstrap over the same prompts; "
                  "* the CI excludes 0):", "",
                  "| model | compliance rate | USR benign | USR toxic |", "|---|---|---|---|"]
        for n in others:
            cells = []
            for metric in METRICS:
                key = f"{n}_minus_{reference}_{metric}"
                star = "*" if excludes_zero(m, key) else ""
                cells.append(_cell(m, key) + star)
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return [*lines, "", f"![Headline: SFT arms]({figure})", ""]


def plot_headline(m: dict, models: Sequence[str], path: Path, title: str) -> None:
    """Three panels (compliance rate, USR benign, USR toxic): one bar per model, CI whiskers."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    colors = plt.get_cmap("tab10")
    for ax, metric in zip(axes, METRICS, strict=True):
        for i, name in enumerate(models):
            v = m.get(f"{name}_{metric}")
            if v is None:
                continue
            lo, hi = m.get(f"{name}_{metric}_ci_low", v), m.get(f"{name}_{metric}_ci_high", v)
            ax.bar(i, v, color=colors(i % 10), edgecolor="black", linewidth=0.5)
            ax.errorbar(i, v, yerr=[[v - lo], [hi - v]], color="black", capsize=4)
            ax.text(i, min(v + 0.03, 1.0), f"{v:.2f}", ha="center", fontsize=8)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, rotation=20, ha="right", fontsize=8)
        ax.set(ylim=(0, 1.08), title=LABELS[metric])
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
