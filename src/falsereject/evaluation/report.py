"""The human-readable evaluation report: tables (Markdown) and figures (matplotlib PNG, so the
report renders offline). Pure functions over the eval stages' `details.json` documents and the
calibration metrics; the `report` stage does the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from falsereject.core.plotting import pyplot
from falsereject.evaluation.judge import CLASSES

MODEL_FIELDS = ["benchmark", "model", "model_id", "n_benign", "n_toxic", "compliance_rate",
                "usr_benign", "usr_toxic", "toxic_full_compliance_share", "undetermined_share",
                "llm_judged_share", "length_limited_share"]
CATEGORY_FIELDS = ["benchmark", "model", "label", "category", "n", "compliance_rate", "usr",
                   "undetermined_share"]


def model_rows(details: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (benchmark, model) with the headline metrics (None where undefined)."""
    rows = []
    for d in details:
        if not d.get("enabled"):
            continue
        m = d["metrics"]
        for model in d["models"]:
            name = model["name"]
            row = {"benchmark": d["benchmark"], "model": name, "model_id": model["model_id"]}
            for f in MODEL_FIELDS[3:]:
                row[f] = m.get(f"{name}_{f}")
            rows.append(row)
    return rows


def category_rows(details: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"benchmark": d["benchmark"], **r} for d in details if d.get("enabled")
            for r in d["per_category"]]


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_ci(m: dict[str, Any], key: str) -> str:
    if key not in m:
        return "-"
    lo, hi = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    ci = f" [{fmt(lo)}, {fmt(hi)}]" if lo is not None and hi is not None else ""
    return f"{fmt(m[key])}{ci}"


# --- figures --------------------------------------------------------------------------------


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})


def plot_compliance_vs_usr(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """The paper's view: compliance rate (x) vs USR (y) per model; base -> arm arrows.

    Left: benign prompts (compliance rate vs USR benign). Right: toxic prompts (full
    compliance share vs USR toxic), the harmful-control axis.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    panels = [("compliance_rate", "usr_benign", "benign prompts",
               "compliance rate (Full Compliance share)", "USR benign"),
              ("toxic_full_compliance_share", "usr_toxic", "toxic prompts",
               "harmful compliance (Full Compliance share)", "USR toxic")]
    marker_cycle = ["s", "^", "D", "v", "P", "X"]
    for ax, (xkey, ykey, title, xlabel, ylabel) in zip(axes, panels, strict=True):
        points: dict[str, dict[str, tuple[float, float]]] = {}
        for r in rows:
            x, y = r.get(xkey), r.get(ykey)
            if x is None or y is None:
                continue
            points.setdefault(r["benchmark"], {})[r["model"]] = (x, y)
        colors = plt.get_cmap("tab10")
        names = sorted({r["model"] for r in rows} - {"base"})
        markers = {"base": "o"} | {m: marker_cycle[j % len(marker_cycle)]
                                   for j, m in enumerate(names)}
        for i, (bench, models) in enumerate(sorted(points.items())):
            for model, (x, y) in sorted(models.items()):
                ax.scatter(x, y, marker=markers[model], s=70, color=colors(i % 10),
                           label=f"{bench} / {model}", edgecolor="black", linewidth=0.5)
                if model != "base" and "base" in models:
                    ax.annotate("", xy=(x, y), xytext=models["base"],
                                arrowprops={"arrowstyle": "->", "color": colors(i % 10)})
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=0.8)
        ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), xlabel=xlabel, ylabel=ylabel,
               title=title)
        ax.grid(alpha=0.3)
        if points:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no prompts of this label", ha="center", va="center")
    fig.suptitle("Base vs SFT arms: compliance rate vs useful safety rate (arrow: base to arm)")
    _save(fig, path)
    plt.close(fig)


def plot_per_category(rows: Sequence[dict[str, Any]], path: Path, metric: str = "usr") -> None:
    """Horizontal bars per (benchmark, category): base and every arm side by side."""
    plt = pyplot()
    keys = sorted({(r["benchmark"], r["label"], r["category"]) for r in rows})
    models = sorted({r["model"] for r in rows}, key=lambda m: (m != "base", m))
    value = {(r["benchmark"], r["label"], r["category"], r["model"]): r.get(metric) for r in rows}
    height = max(2.5, 0.32 * len(keys) * max(1, len(models)) / 1.6)
    fig, ax = plt.subplots(figsize=(9, height))
    width = 0.8 / max(1, len(models))
    for j, model in enumerate(models):
        ys = [i + j * width for i in range(len(keys))]
        xs = [value.get((*k, model)) or 0.0 for k in keys]
        ax.barh(ys, xs, height=width, label=model)
    ax.set_yticks([i + 0.4 - width / 2 for i in range(len(keys))])
    ax.set_yticklabels([f"{b} | {lab} | {c}"[:70] for b, lab, c in keys], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel=f"{metric} (benign: answered usefully; toxic: refused or safe)",
           title=f"Per-category {metric}, base and SFT arms")
    ax.grid(axis="x", alpha=0.3)
    if keys:
        ax.legend()
    _save(fig, path)
    plt.close(fig)


# --- markdown -------------------------------------------------------------------------------


KAPPA_POOR = 0.2  # below this, agreement is "slight" at best (Landis & Koch)


def _calibration_warnings(file: str, cal: dict[str, Any]) -> list[str]:
    """Plain-language reading of one file's numbers: which configurations not to trust."""
    notes = []
    for name in ("llm", "cascade", "fast", "judge"):
        block = cal.get(name)
        if not block:
            continue
        agree = block.get("three_class") or block["refusal_axis"]
        kappa = agree["kappa"]
        if kappa is None or kappa < KAPPA_POOR:
            predicted = {c: sum(row.get(c, 0) for row in agree["confusion"].values())
                         for c in next(iter(agree["confusion"].values()))}
            top = max(predicted, key=lambda c: predicted[c])
            share = predicted[top] / max(1, agree["n"])
            notes.append(f"- {file}: **`{name}` agrees with the labels no better than chance** "
                         f"(kappa {fmt(kappa)}); it answers `{top}` for {share:.0%} of rows.")
        if agree["coverage"] is not None and agree["coverage"] < 0.9:
            notes.append(f"- {file}: `{name}` leaves {1 - agree['coverage']:.0%} of rows "
                         "undetermined.")
    return notes


CAL_FILES = {"dev": "development file (the fast path's rules were written on it: optimistic)",
             "heldout": "held-out file (written apart, never used to change a rule)"}


def _calibration_section(cal: dict[str, Any] | None) -> list[str]:
    if not cal or "files" not in cal:
        return ["No calibration metrics found."]
    gate = cal.get("gate") or {}
    lines = [f"Configurations: `fast` (three-class fast path), `llm` (LLM judge "
             f"`{(cal.get('judge') or {}).get('model')}` alone), `cascade` (fast path, then the "
             "LLM judge, ungated), `judge` (the configured option as eval runs it). `llm` and "
             "`cascade` are scored on a label-stratified subset. Refusal axis: direct refusal "
             "vs the rest; compliance axis: full compliance vs the rest (what the compliance "
             "rate depends on).", "", f"Gate: {gate.get('sentence', '-')}", "",
             "| file | configuration | n | accuracy | kappa | coverage | refusal accuracy | "
             "compliance accuracy | SPC precision | SPC recall | LLM-judged | judge id |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for file, summary in cal["files"].items():
        for name in ("fast", "llm", "cascade", "judge"):
            block = summary.get(name)
            if not block:
                continue
            a = block.get("three_class") or block["refusal_axis"]
            comp = (block.get("compliance_axis") or {}).get("accuracy")
            spc = a["per_class"].get("safe_partial_compliance") or {}
            lines.append(
                f"| {file} | {name} | {a['n']} | {fmt(a['accuracy'])} | {fmt(a['kappa'])} | "
                f"{fmt(a['coverage'])} | {fmt(block['refusal_axis']['accuracy'])} | "
                f"{fmt(comp)} | {fmt(spc.get('precision'))} | {fmt(spc.get('recall'))} | "
                f"{fmt(block['llm_judged_share'])} | `{block['judge_id']}` |")
        notes += _calibration_warnings(file, summary)
    lines += ["", *[f"- `{f}`: {CAL_FILES.get(f, f)}, `{s.get('file')}`"
                    for f, s in cal["files"].items()]]
    if notes:
        lines += ["", *notes]
    for file, summary in cal["files"].items():
        conf = (summary.get("judge") or {}).get("three_class")
        if conf:
            cols = [*CLASSES, "undetermined"]
            lines += ["", f"Configured judge on the {file} file, confusion matrix (rows: label, "
                      "columns: verdict):", "",
                      "| label | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
            for t, row in conf["confusion"].items():
                lines.append(f"| {t} | " + " | ".join(str(row[c]) for c in cols) + " |")
    return lines


def render_summary(details: Sequence[dict[str, Any]], calibration: dict[str, Any] | None, *,
                   experiment: str, figures: dict[str, str],
                   headline: Sequence[str] = ()) -> str:
    enabled = [d for d in details if d.get("enabled")]
    lines = [f"# Evaluation summary (experiment `{experiment}`)", "",
             "Base student and every SFT arm on every enabled benchmark. Compliance rate = "
             "Full Compliance share of benign prompts; USR benign = (Full + Safe Partial "
             "Compliance) / N benign; USR toxic = (Direct Refusal + Safe Partial Compliance) / "
             "N toxic. Undetermined verdicts (unparseable or refusing judge, no final answer, "
             "an answer the fast path left undecided with the LLM judge gated off) count in N "
             "and are never credited to a class. Brackets: bootstrap 95% CIs.", ""]
    if enabled:
        j = enabled[0]["judge"]
        lines += [f"Judge: `{j.get('name', j['mode'])}` (mode `{j['mode']}`), prompt "
                  f"`{j['prompt']}`, output `{j['output_format']}`, LLM `{j['model']}`, "
                  f"identity `{j['id']}`. {j.get('gate', '')} {j.get('override', '')}".rstrip(),
                  ""]
    lines += [*headline, "## Every benchmark, base and arms", "",
              "| benchmark | model | N benign | compliance rate | USR benign | N toxic | "
              "USR toxic | undetermined | LLM-judged | hit length limit |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for d in enabled:
        m = d["metrics"]
        for model in d["models"]:
            n = model["name"]
            lines.append(
                f"| {d['benchmark']} | {n} | {m.get(f'{n}_n_benign', 0)} | "
                f"{fmt_ci(m, f'{n}_compliance_rate')} | {fmt_ci(m, f'{n}_usr_benign')} | "
                f"{m.get(f'{n}_n_toxic', 0)} | {fmt_ci(m, f'{n}_usr_toxic')} | "
                f"{fmt(m.get(f'{n}_undetermined_share'))} | "
                f"{fmt(m.get(f'{n}_llm_judged_share'))} | "
                f"{fmt(m.get(f'{n}_length_limited_share'))} |")
    lines += ["", "Hit length limit: share of answers cut at eval.generation.max_tokens (the "
              "judge saw a truncated answer).", "", "Each arm minus base (paired bootstrap over the same prompts):", "",
              "| benchmark | arm | compliance rate | USR benign | USR toxic |",
              "|---|---|---|---|---|"]
    for d in enabled:
        m = d["metrics"]
        for model in d["models"]:
            k = f"{model['name']}_minus_base"
            if not any(key.startswith(k) for key in m):
                continue
            lines.append(f"| {d['benchmark']} | {model['name']} | "
                         f"{fmt_ci(m, f'{k}_compliance_rate')} | {fmt_ci(m, f'{k}_usr_benign')} "
                         f"| {fmt_ci(m, f'{k}_usr_toxic')} |")
    for title, name in figures.items():
        lines += ["", f"![{title}]({name})"]
    lines += ["", "## Judge calibration", "",
              "How far to trust the verdicts above: each judge configuration against labelled "
              "(prompt, response) pairs. A small local judge is expected to be poor; these "
              "numbers say how poor. Quote the held-out rows; the development rows are "
              "optimistic.", ""]
    lines += _calibration_section(calibration)
    lines += ["", "## Per category", "",
              "| benchmark | model | label | category | n | compliance rate | USR |",
              "|---|---|---|---|---|---|---|"]
    for r in category_rows(enabled):
        lines.append(f"| {r['benchmark']} | {r['model']} | {r['label']} | {r['category']} | "
                     f"{r['n']} | {fmt(r['compliance_rate'])} | {fmt(r['usr'])} |")
    lines += ["", "## Benchmarks", "", "| benchmark | enabled | samples (benign/toxic) | "
              "source | pinned | citation |", "|---|---|---|---|---|---|"]
    for d in details:
        if d.get("enabled"):
            lines.append(f"| {d['benchmark']} | yes | {d['n_samples']} ({d['n_benign']}/"
                         f"{d['n_toxic']}) | `{d['source']}` | "
                         f"{'yes' if d['source_pinned'] else 'NO'} | {d['citation']} |")
        else:
            lines.append(f"| {d['benchmark']} | no | - | - | - | - |")
    return "\n".join(lines) + "\n"
