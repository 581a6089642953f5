"""Stage `kl`: per-position KL(arm || base) over the first response tokens, on harmful and on
benign prompts, for every SFT arm (the paper's token-level analysis).

The prompts are those the eval stages answered (`kl.harmful` / `kl.benign` name the benchmarks;
a seeded sample of `kl.n_prompts` each); both models are teacher-forced on the BASE student's
greedy response, so every arm is measured on the same tokens.
Reads: <eval-dir>/<benchmark>/verdicts.jsonl, models/sft/<arm>/. Params: kl, model, sft.arms,
run. Writes: <reports>/metrics.json (`<arm>.<set>.kl_mean`, `kl_first5_mean`, `kl_posNN`),
<reports>/kl.png, <reports>/responses.json (the base responses used), timing.json.

    python stages/kl.py --eval-dir data/eval --sft-dir models/sft --reports reports/kl
"""

from __future__ import annotations

import time
from pathlib import Path

from falsereject.core import stage
from falsereject.core.config import ConfigError, Params
from falsereject.core.io import InputError, read_jsonl, write_json
from falsereject.training.recipes import sample_rows


def prompts_of(p: Params, eval_dir: Path, bench: str, label: str) -> list[str]:
    """The distinct prompts of one label that eval@<bench> answered, seeded sample."""
    if bench not in p.eval.benchmarks or not p.eval.benchmarks[bench].enabled:
        raise ConfigError(f"kl: eval.benchmarks.{bench} must exist and be enabled")
    path = eval_dir / bench / "verdicts.jsonl"
    seen: dict[str, str] = {}
    for r in read_jsonl(path):
        if r["label"] == label:
            seen.setdefault(r["sample_id"], r["prompt"])
    if not seen:
        raise InputError(f"{path}: no {label} prompt to measure KL on")
    ids = sample_rows(sorted(seen), p.kl.n_prompts, p.run.seed, f"kl:{bench}")
    return [seen[i] for i in ids]


class Arms:
    """Each arm's model in turn: LoRA adapters loaded onto the one base model in memory (PEFT
    injects them in place, so the base's own logits are taken first), or full weights."""

    def __init__(self, base_model, sft_dir: Path):
        self.base, self.sft_dir, self.peft = base_model, sft_dir, None

    def get(self, arm: str):
        arm_dir = self.sft_dir / arm
        if (arm_dir / "adapter" / "adapter_config.json").exists():
            from peft import PeftModel

            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.base, str(arm_dir / "adapter"),
                                                      adapter_name=arm)
            else:
                self.peft.load_adapter(str(arm_dir / "adapter"), adapter_name=arm)
            self.peft.set_adapter(arm)
            return self.peft.eval()
        if not (arm_dir / "model" / "config.json").exists():
            raise InputError(f"{arm_dir}: neither adapter/adapter_config.json nor "
                             "model/config.json")
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(arm_dir / "model").eval()


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--eval-dir", "--sft-dir", "--reports"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    sets = {"harmful": prompts_of(p, Path(args.eval_dir), p.kl.harmful, "toxic"),
            "benign": prompts_of(p, Path(args.eval_dir), p.kl.benign, "benign")}

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from falsereject.evaluation.kl import (
        base_responses,
        per_position_kl,
        plot_kl,
        response_logits,
        summarize,
    )
    from falsereject.llm.local.engine import torch_threads, weights_dir
    from falsereject.llm.local.student import base_spec

    start = time.perf_counter()
    torch.set_num_threads(torch_threads())
    weights = weights_dir(base_spec(p.model))
    tok = AutoTokenizer.from_pretrained(weights)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32).eval()
    batches = {name: base_responses(model, tok, prompts, p.kl.n_tokens)
               for name, prompts in sets.items()}
    base_logits = {name: response_logits(model, b) for name, b in batches.items()}
    metrics: dict[str, dict] = {}
    curves: dict[str, dict[str, list[float]]] = {}
    arms = Arms(model, Path(args.sft_dir))
    for arm in p.sft.arms:
        tuned = arms.get(arm)
        for name, b in batches.items():
            kl, counts = per_position_kl(response_logits(tuned, b), base_logits[name],
                                         b["response_mask"])
            metrics.setdefault(arm, {})[name] = summarize(kl, counts)
            curves.setdefault(arm, {})[name] = kl
    rep = Path(args.reports)
    plot_kl(curves, rep / "kl.png", p.kl.n_tokens)
    write_json(rep / "metrics.json", metrics)
    write_json(rep / "responses.json", {
        name: [{"prompt": q, "base_response": t} for q, t in zip(sets[name], b["texts"],
                                                                  strict=True)]
        for name, b in batches.items()})
    write_json(rep / "timing.json", {"wall_s": round(time.perf_counter() - start, 2)})
    for arm, by_set in metrics.items():
        print(f"kl {arm}: " + ", ".join(f"{s} mean {v['kl_mean']:.4f} (first 5: "
                                         f"{v['kl_first5_mean']:.4f})"
                                         for s, v in by_set.items()))


if __name__ == "__main__":
    stage.entrypoint(main)
