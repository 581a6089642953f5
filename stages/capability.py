"""Stage `capability`: general capability of the base student and every SFT arm with
lm-evaluation-harness, so a fine-tune that buys safety with capability shows it.

Default: `capability_mc`, the team-written offline multiple-choice task (custom task YAML in
`capability.include_path` over the JSONL files in `capability.data_path`); MMLU / GSM8K (or any
lm-eval task) by config where the HF hub is reachable.
Reads: models/sft/<arm>/, the task YAMLs and data. Params: capability, model, sft.arms, run.
Writes: <reports>/metrics.json (`<model>.<task>.<metric>`, and `<arm>.<task>.<metric>_minus_base`),
<reports>/summary.md, <reports>/timing.json.

    python stages/capability.py --sft-dir models/sft --reports reports/capability
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from falsereject.core import stage
from falsereject.core.config import Params
from falsereject.core.io import InputError, write_json, write_text

log = logging.getLogger("capability")

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


def model_args(p: Params, sft_dir: Path, name: str, weights: Path) -> dict[str, Any]:
    if name == "base":
        return {"pretrained": str(weights)}
    arm_dir = sft_dir / name
    if (arm_dir / "adapter" / "adapter_config.json").exists():
        return {"pretrained": str(weights), "peft": str(arm_dir / "adapter")}
    if (arm_dir / "model" / "config.json").exists():
        return {"pretrained": str(arm_dir / "model")}
    raise InputError(f"{arm_dir}: neither adapter/adapter_config.json nor model/config.json")


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--sft-dir", "--reports"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    cfg = p.capability
    tasks = {k: t for k, t in cfg.tasks.items() if t.enabled}
    if not tasks:
        raise InputError("capability.tasks: no task enabled")
    if not any(Path(cfg.data_path).glob("*.jsonl")):
        raise InputError(f"{cfg.data_path}: no *.jsonl items for the local capability task")

    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from falsereject.llm.local.engine import torch_threads, weights_dir
    from falsereject.llm.local.student import base_spec

    start = time.perf_counter()
    torch.set_num_threads(torch_threads())
    weights = weights_dir(base_spec(p.model))
    manager = TaskManager(include_path=cfg.include_path)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for name in ["base", *p.sft.arms]:
        lm = HFLM(**model_args(p, Path(args.sft_dir), name, weights), device="cpu"
                  if not torch.cuda.is_available() else "cuda", batch_size=cfg.batch_size,
                  dtype="float32" if not torch.cuda.is_available() else "bfloat16")
        for task, tcfg in tasks.items():
            res = simple_evaluate(model=lm, tasks=[task], num_fewshot=tcfg.num_fewshot,
                                  limit=tcfg.limit, task_manager=manager, log_samples=False,
                                  random_seed=p.run.seed, numpy_random_seed=p.run.seed,
                                  torch_random_seed=p.run.seed, fewshot_random_seed=p.run.seed)
            scores.setdefault(name, {})[task] = task_scores(res["results"][task])
        del lm
    metrics = with_differences(scores)
    rep = Path(args.reports)
    write_json(rep / "metrics.json", metrics)
    write_text(rep / "summary.md", render(metrics))
    write_json(rep / "timing.json", {"wall_s": round(time.perf_counter() - start, 2)})
    for m, by_task in metrics.items():
        print(f"capability {m}: " + ", ".join(
            f"{t} acc {v.get('acc', float('nan')):.3f}" for t, v in by_task.items()))


if __name__ == "__main__":
    stage.entrypoint(main)
