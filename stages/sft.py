"""Stage `sft`: fine-tune the student model on the structured FalseReject data (TRL + PEFT).

Reads the public-schema train export (target: `instruct_response` or the cot trace + solution,
params `sft.mode`), optionally mixed with general instruction data; params `model` (the
student), `sft` (method, schedule, mix) and `run` (seed). Device and precision come from the
hardware. Writes `models/sft/adapter/` (LoRA) or `models/sft/model/` (full), optionally
`models/sft/merged/`, plus `models/sft/sft_info.json`; the loss curve and metrics via DVCLive
under the reports dir, and greedy answers of base vs fine-tuned student to held-out prompts.

    python stages/sft.py --train data/export/train.jsonl --heldout data/export/test.jsonl \
        --out models/sft --reports reports/sft
    accelerate launch stages/sft.py ...   # several GPUs (see scripts/gpu_sft.sh)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from falsereject.core import stage
from falsereject.core.config import Params
from falsereject.core.io import read_jsonl, write_json
from falsereject.llm.local.engine import weights_dir
from falsereject.llm.local.student import base_spec
from falsereject.training.data import training_chats


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def sft_info(p: Params, data_info: dict, stats: dict, result: Any) -> dict[str, Any]:
    """What was trained, from what: deterministic given the inputs and the hardware kind."""
    cfg = p.sft
    hw = result.hardware
    return {
        "base_model": {"name": p.model.name, "hf_id": p.model.hf_id,
                       "revision": p.model.revision},
        "method": cfg.method, "mode": cfg.mode,
        "lora": cfg.lora.model_dump() if cfg.lora else None,
        "seed": p.run.seed, "steps": result.steps, "batch_size": hw.effective_batch,
        "max_length": min(cfg.max_length, p.model.max_seq_len),
        "learning_rate": cfg.learning_rate, "lr_scheduler": cfg.lr_scheduler,
        "data": data_info | stats,
        "hardware": {"device": hw.device, "precision": "bf16" if hw.bf16 else "fp32",
                     "processes": hw.world_size},
    }


def save_model(result: Any, out_dir: Path, cfg: Any, hf_id: str) -> None:
    """adapter/ (LoRA, PEFT format) or model/ (full), tokenizer beside; merged/ if asked."""
    model, tok = result.model, result.tokenizer
    if cfg.method == "lora":
        for peft_cfg in model.peft_config.values():
            peft_cfg.base_model_name_or_path = hf_id  # not this machine's cache path
        model.save_pretrained(out_dir / "adapter")
        tok.save_pretrained(out_dir / "adapter")
        if cfg.merge_adapter:
            merged = model.merge_and_unload()
            merged.save_pretrained(out_dir / "merged")
            tok.save_pretrained(out_dir / "merged")
    else:
        model.save_pretrained(out_dir / "model")
        tok.save_pretrained(out_dir / "model")


def compare_samples(result: Any, weights: Path, prompts: list[str], p: Params) -> list[dict]:
    """Greedy answers of the base and the fine-tuned student to the same held-out prompts."""
    from falsereject.training.trainer import generate_greedy, load_student

    cfg = p.sft
    model, tok = result.model, result.tokenizer
    n_new, system = cfg.samples.max_new_tokens, cfg.system_prompt
    tuned = generate_greedy(model, tok, prompts, n_new, system)
    if cfg.method == "lora":
        with model.disable_adapter():
            base = generate_greedy(model, tok, prompts, n_new, system)
    else:
        base_model, _ = load_student(weights, result.hardware)
        base = generate_greedy(base_model.to(model.device), tok, prompts, n_new, system)
    return [{"prompt": q, "base": b, "sft": t, "differs": b != t}
            for q, b, t in zip(prompts, base, tuned, strict=True)]


def plot_loss(losses: list[float], lrs: list[float], path: Path) -> None:
    """The loss curve as a PNG: `dvc plots show` HTML needs the web, an image does not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = range(1, len(losses) + 1)
    ax.plot(steps, losses, marker="o", ms=3, label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (assistant tokens)")
    if lrs:
        twin = ax.twinx()
        twin.plot(range(1, len(lrs) + 1), lrs, color="tab:gray", ls="--", label="learning rate")
        twin.set_ylabel("learning rate")
    ax.set_title("sft: train loss")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def replace_dir(tmp: Path, out: Path) -> None:
    tmp.chmod(0o755)  # mkdtemp makes it private
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--train", "--heldout", "--out", "--reports"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    weights = weights_dir(base_spec(p.model))  # a hub model fails here, before any work
    chats, data_info = training_chats(args.train, p.sft, p.run.seed)
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
    metrics = {
        "steps": result.steps, "train_tokens": result.train_tokens,
        "runtime_s": round(result.runtime_s, 1),
        "s_per_step": round(result.runtime_s / max(result.steps, 1), 2),
        "tokens_per_s": round(tokens_per_s, 1), "final_loss": round(result.final_loss, 4),
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
    print(f"sft: {result.steps} steps in {metrics['runtime_s']} s "
          f"({metrics['s_per_step']} s/step, {metrics['tokens_per_s']} tokens/s on "
          f"{result.hardware.device}), loss {metrics['first_loss']} -> {metrics['final_loss']}, "
          f"held-out answers changed: {metrics.get('heldout_differ_rate', 'n/a')} -> {out}")


if __name__ == "__main__":
    stage.entrypoint(main)
