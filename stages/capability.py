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
from falsereject.evaluation.capability import render, task_scores, with_differences

log = logging.getLogger("capability")


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
    from falsereject.llm.local.weights import local_dtype

    start = time.perf_counter()
    torch.set_num_threads(torch_threads())
    weights = weights_dir(base_spec(p.model))
    manager = TaskManager(include_path=cfg.include_path)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for name in ["base", *p.sft.arms]:
        lm = HFLM(**model_args(p, Path(args.sft_dir), name, weights), device="cpu"
                  if not torch.cuda.is_available() else "cuda", batch_size=cfg.batch_size,
                  dtype=local_dtype() if not torch.cuda.is_available() else "bfloat16")
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
