"""Token-level KL divergence between a fine-tuned arm and the base student (the paper's
analysis: FalseReject-trained models differ from the base over more response positions).

For every prompt the base student's greedy response (first `n_tokens` tokens) is teacher-forced
through both models; at response position t, KL(arm || base) = sum_v p_arm(v) log(p_arm(v) /
p_base(v)) over the next-token distributions. Both models see the same text, so a difference
is a difference in what they would say next, not in what they said before.

torch is imported inside the functions: this module is importable without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from falsereject.core.plotting import pyplot


def per_position_kl(logits_p: Any, logits_q: Any, mask: Any) -> tuple[list[float], list[int]]:
    """Mean over rows of KL(P || Q) at each position, counting only masked-in positions.

    logits_p, logits_q: [rows, positions, vocab]; mask: [rows, positions] (1 = counted).
    Returns (mean KL per position, rows counted per position); a position no row reaches
    gets KL 0.0 with count 0.
    """
    import torch

    lp = torch.log_softmax(logits_p.double(), dim=-1)
    lq = torch.log_softmax(logits_q.double(), dim=-1)
    kl = (lp.exp() * (lp - lq)).sum(-1)  # [rows, positions]
    m = mask.to(kl.dtype)
    counts = m.sum(0)
    means = (kl * m).sum(0) / counts.clamp(min=1)
    return [float(x) for x in means], [int(c) for c in counts]


def base_responses(model: Any, tok: Any, prompts: Sequence[str], n_tokens: int) -> dict:
    """Greedy responses of `model` (left-padded batch): prompt ids, response ids, masks."""
    import torch

    from falsereject.llm.local.engine import REPETITION_PENALTY

    side = tok.padding_side
    tok.padding_side = "left"
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                     add_generation_prompt=True) for p in prompts]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    tok.padding_side = side
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=n_tokens, min_new_tokens=1, do_sample=False,
                             repetition_penalty=REPETITION_PENALTY, temperature=None,
                             top_p=None, top_k=None, pad_token_id=tok.pad_token_id)
    resp = out[:, enc["input_ids"].shape[1]:]
    # a response counts up to and including its end-of-turn token; padding after it does not
    eos = {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")} - {None}
    rmask = torch.ones_like(resp)
    for i in range(resp.shape[0]):
        for t in range(resp.shape[1]):
            if int(resp[i, t]) in eos:
                rmask[i, t + 1:] = 0
                break
    return {"prompt_ids": enc["input_ids"], "prompt_mask": enc["attention_mask"],
            "response_ids": resp, "response_mask": rmask,
            "texts": [tok.decode(r[m.bool()], skip_special_tokens=True)
                      for r, m in zip(resp, rmask, strict=True)]}


def response_logits(model: Any, batch: dict) -> Any:
    """Next-token logits at each response position, teacher-forced: [rows, n_tokens, vocab]."""
    import torch

    ids = torch.cat([batch["prompt_ids"], batch["response_ids"]], dim=1)
    attn = torch.cat([batch["prompt_mask"], batch["response_mask"]], dim=1)
    pos = (attn.cumsum(1) - 1).clamp(min=0)  # left padding: positions count real tokens only
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=attn, position_ids=pos).logits
    n_prompt, n_resp = batch["prompt_ids"].shape[1], batch["response_ids"].shape[1]
    # logits at index j predict token j + 1: the response token t is predicted at n_prompt-1+t
    return logits[:, n_prompt - 1: n_prompt - 1 + n_resp, :].float()


def summarize(kl: list[float], counts: list[int]) -> dict[str, float]:
    """Flat numbers of one (arm, prompt set): mean over positions, first 5, and each position."""
    seen = [k for k, c in zip(kl, counts, strict=True) if c]
    out = {"kl_mean": sum(seen) / len(seen) if seen else 0.0,
           "kl_first5_mean": sum(seen[:5]) / len(seen[:5]) if seen else 0.0}
    out |= {f"kl_pos{t + 1:02d}": round(k, 6) for t, k in enumerate(kl)}
    return {k: round(v, 6) for k, v in out.items()}


def plot_kl(curves: dict[str, dict[str, list[float]]], path: Path, n_tokens: int) -> None:
    """One panel per prompt set, one line per arm: KL(arm || base) by response position."""
    plt = pyplot()
    sets = sorted({s for c in curves.values() for s in c})
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(5.5 * max(1, len(sets)), 3.8),
                             sharey=True, squeeze=False)
    for ax, name in zip(axes[0], sets, strict=False):
        for arm, by_set in curves.items():
            if name in by_set:
                xs = range(1, len(by_set[name]) + 1)
                ax.plot(xs, by_set[name], marker="o", ms=3, label=arm)
        ax.set(xlabel="response token position", title=f"{name} prompts",
               xlim=(0.5, n_tokens + 0.5))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("KL(arm || base), nats")
    fig.suptitle("Per-token KL divergence from the base student (teacher-forced on the base's "
                 "greedy response)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
