"""Stage `sft@<arm>`: fine-tune the base student on one arm's data recipe (TRL + PEFT).

Every arm of `sft.arms` starts from the same base student; its recipe names the parts it trains
on: `safety` and `general` (the sft_data stage's recipe file: toxic seed prompts with refusals,
instructions answered by the base student, plus `sft.mix`) and `falsereject` (the public-schema
train export; target `instruct_response` or the cot trace + solution, params `sft.mode`).
Params `model` (the student), `sft` (method, schedule, arms) and `run` (seed). Device and
precision come from the hardware. Writes `<out>/adapter/` (LoRA) or `<out>/model/` (full),
optionally `<out>/merged/`, plus `<out>/sft_info.json`; the loss curve and metrics via DVCLive
under the reports dir, and greedy answers of base vs fine-tuned student to held-out prompts.

    python stages/sft.py --arm general_falsereject --recipe data/sft_data/recipe.jsonl \
        --train data/export/train.jsonl --heldout data/export/test.jsonl \
        --out models/sft/general_falsereject --reports reports/sft/general_falsereject
    accelerate launch stages/sft.py ...   # several GPUs (see scripts/gpu_sft.sh)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from falsereject.core import stage
from falsereject.core.config import ConfigError
from falsereject.core.io import read_jsonl, write_json
from falsereject.llm.local.engine import weights_dir
from falsereject.llm.local.student import base_spec
from falsereject.training.artifacts import (
    compare_samples,
    plot_loss,
    replace_dir,
    save_model,
    sft_info,
)
from falsereject.training.data import arm_training_chats


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--arm", "--recipe", "--train", "--heldout", "--out", "--reports"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    if args.arm not in p.sft.arms:
        raise ConfigError(f"sft.arms has no {args.arm!r}; known: {sorted(p.sft.arms)}")
    weights = weights_dir(base_spec(p.model))  # a hub model fails here, before any work
    chats, data_info = arm_training_chats(p.sft.arms[args.arm], args.recipe, args.train,
                                          p.sft, p.run.seed)
    data_info = {"arm": args.arm, **data_info}
    heldout = [r["prompt"] for r in read_jsonl(args.heldout)][: p.sft.samples.n_prompts]
    max_length = min(p.sft.max_length, p.model.max_seq_len)

    from falsereject.training.trainer import train

    live = None
    if is_main_process():
        from dvclive import Live

        live = Live(dir=args.reports, save_dvc_exp=False, dvcyaml=False, report=None)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sft-work-") as work:
        result, stats = train(weights, chats, p.sft, max_length, p.run.seed, work, live)
    if not result.is_main:
        return
    samples = compare_samples(result, weights, heldout, p)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_model(result, tmp, p.sft, p.model.hf_id)
        (tmp / "sft_info.json").write_text(
            json.dumps(sft_info(p, data_info, stats, result), indent=2, sort_keys=True) + "\n")
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(Path(args.reports) / "samples.json", {"samples": samples})
    plot_loss(result.losses, result.learning_rates, Path(args.reports) / "loss.png")
    tokens_per_s = result.train_tokens / result.runtime_s if result.runtime_s else 0.0
    timing = {"wall_s": round(result.runtime_s, 1),  # timing.json: never in tracked metrics
              "s_per_step": round(result.runtime_s / max(result.steps, 1), 2),
              "tokens_per_s": round(tokens_per_s, 1), "device": result.hardware.device}
    write_json(Path(args.reports) / "timing.json", timing)
    metrics = {
        "steps": result.steps, "train_tokens": result.train_tokens,
        "final_loss": round(result.final_loss, 4),
        "first_loss": round(result.losses[0], 4) if result.losses else result.final_loss,
        "examples": stats["examples"], "examples_truncated": stats["examples_truncated"],
    }
    if samples:  # no held-out prompts (an empty test split): no rate rather than NaN
        metrics["heldout_differ_rate"] = round(sum(s["differs"] for s in samples) / len(samples),
                                               3)
    for key, value in metrics.items():
        live.log_metric(key, value, plot=False)
    live.end()
    if not math.isfinite(result.final_loss):
        raise SystemExit(f"sft: final loss is {result.final_loss}: training diverged")
    print(f"sft@{args.arm}: {result.steps} steps in {timing['wall_s']} s "
          f"({timing['s_per_step']} s/step, {timing['tokens_per_s']} tokens/s on "
          f"{result.hardware.device}), loss {metrics['first_loss']} -> {metrics['final_loss']}, "
          f"held-out answers changed: {metrics.get('heldout_differ_rate', 'n/a')} -> {out}")


if __name__ == "__main__":
    stage.entrypoint(main)
