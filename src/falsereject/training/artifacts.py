"""What the sft stage leaves behind besides metrics: the saved model, base-vs-tuned samples on
held-out prompts, the loss plot and `sft_info.json`'s content."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from falsereject.core.config import Params
from falsereject.core.plotting import pyplot


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
    plt = pyplot()
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
    """Swap a finished temp dir in for `out` (made with mkdtemp, so it is private until now)."""
    tmp.chmod(0o755)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
