"""lm-evaluation-harness results as the capability stage reports them: per-task scores, each
arm's difference to the base student, the Markdown table."""

from __future__ import annotations

from typing import Any

SCORES = ("acc", "acc_norm", "exact_match")  # lm-eval metric names kept, where a task has them


def task_scores(result: dict[str, Any]) -> dict[str, float]:
    """{metric: value, metric_stderr: value} of one task's lm-eval result block."""
    out = {}
    for key, value in result.items():
        name, _, _filter = key.partition(",")
        base = name.removesuffix("_stderr")
        if base in SCORES and isinstance(value, (int, float)):
            out[name if name == base else f"{base}_stderr"] = round(float(value), 6)
    return out


def with_differences(scores: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Per model, per task: the scores; every arm also gets `<metric>_minus_base`."""
    out: dict[str, Any] = {m: {t: dict(v) for t, v in tasks.items()}
                           for m, tasks in scores.items()}
    base = scores.get("base", {})
    for m, tasks in scores.items():
        if m == "base":
            continue
        for t, v in tasks.items():
            for k, x in v.items():
                if not k.endswith("_stderr") and k in base.get(t, {}):
                    out[m][t][f"{k}_minus_base"] = round(x - base[t][k], 6)
    return out


def render(metrics: dict[str, Any]) -> str:
    lines = ["# General capability (lm-evaluation-harness)", "",
             "| model | task | metric | value | stderr | minus base |", "|---|---|---|---|---|---|"]
    for m, tasks in metrics.items():
        for t, v in tasks.items():
            for k in SCORES:
                if k in v:
                    se = v.get(f"{k}_stderr")
                    diff = v.get(f"{k}_minus_base")
                    lines.append(f"| {m} | {t} | {k} | {v[k]:.3f} | "
                                 f"{'-' if se is None else f'{se:.3f}'} | "
                                 f"{'-' if diff is None else f'{diff:+.3f}'} |")
    return "\n".join(lines) + "\n"
