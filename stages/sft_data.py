"""Stage `sft_data`: the general recipe shared by every SFT arm, built once.

Safety part: toxic prompts of the seeds (never of an evaluation set) paired with refusals; the
responder writes them when it can refuse (hosted / vLLM, `sft.safety.refusals` auto|responder),
the embedded model never refuses, so for it they come from the team-written refusals file.
General part: ordinary instructions answered by the base student itself (self-distillation;
the stage output is DVC-cached and the answers LLM-cached, so re-runs do not pay again).
Reads: the seeds, `sft.safety.refusals_path`, `sft.general.path`, and every enabled evaluation
set held in a local file (own test split included), whose prompts are never trained on.
Params: sft.safety, sft.general, eval.benchmarks, model, llm.roles.responder, run.
Writes: <out> (one record per training pair, `part` safety|general, with provenance),
<reports>/metrics.json, timing.json, llm_ledger.json.

    python stages/sft_data.py --seeds data/seeds/seeds.jsonl \
        --refusals resources/experiment/refusals.jsonl \
        --instructions resources/experiment/general_instructions.jsonl \
        --test-split data/generate/test.jsonl --out data/sft_data/recipe.jsonl --reports reports/sft_data
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from falsereject.core import stage
from falsereject.core.config import Params, RoleModel
from falsereject.core.io import InputError, read_jsonl_numbered, write_json, write_jsonl
from falsereject.core.refusal import is_refusal
from falsereject.training.recipes import (
    REFUSE_INSTRUCTION,
    general_records,
    normalize,
    safety_records,
    sample_rows,
    validate_refusals,
)


def read_prompts(path: str, kind: str) -> list[dict]:
    rows = []
    for line, r in read_jsonl_numbered(path):
        if not isinstance(r.get("prompt"), str) or not r["prompt"].strip():
            raise InputError(f"{path}:{line}: `prompt` must be a non-empty string ({kind})")
        if not isinstance(r.get("id"), str):
            raise InputError(f"{path}:{line}: `id` must be a string ({kind})")
        rows.append(r)
    return rows


def refusal_source(p: Params) -> str:
    mode = p.sft.safety.refusals
    if mode != "auto":
        return mode
    return "file" if p.llm.roles.responder.model.startswith("local/") else "responder"


def eval_prompts(p: Params, test_split: str) -> set[str]:
    """Normalized prompts of every enabled evaluation set held in a local file (the own test
    split included): none of them may become training data."""
    from falsereject.evaluation.benchmarks import load_benchmark

    out: set[str] = set()
    for name, cfg in p.eval.benchmarks.items():
        if cfg.enabled and cfg.source.type in ("file", "pipeline"):
            whole = cfg.model_copy(update={"max_samples": None})
            out |= {normalize(s.prompt) for s in load_benchmark(name, whole,
                                                                pipeline_path=test_split)}
    return out


def run(p: Params, seeds: list[dict], refusals: list[dict], instructions: list[dict], *,
        client: Any, base_id: str | None, exclude: set[str] = frozenset()) -> dict[str, Any]:
    """Records and metrics of the recipe (injected client: tests pass fakes). Seeds and
    instructions whose normalized prompt is in `exclude` (evaluation prompts) are left out."""
    seed = p.run.seed
    clean = [s for s in seeds if normalize(s["prompt"]) not in exclude]
    instructions_clean = [i for i in instructions if normalize(i["prompt"]) not in exclude]
    toxic = sample_rows(clean, p.sft.safety.n_prompts, seed, "safety")
    asked: dict[str, str] = {}
    source = refusal_source(p)
    if source == "responder" and toxic:
        role = p.llm.roles.responder
        convs = [[{"role": "system", "content": REFUSE_INSTRUCTION},
                  {"role": "user", "content": s["prompt"]}] for s in toxic]
        for s, res in zip(toxic, client.chat_many(role, convs, seed=seed), strict=True):
            text = getattr(res, "text", None)
            if text and is_refusal(text):  # a responder that complied is not a refusal
                asked[s["id"]] = text.strip()
    safety = safety_records(toxic, refusals, seed, asked)
    chosen = sample_rows(instructions_clean, p.sft.general.n_instructions, seed, "general")
    answers: list[str | None] = []
    if chosen:
        role = RoleModel(model=base_id or "", temperature=0.0, top_p=1.0,
                         max_tokens=p.sft.general.max_tokens, api_base_env=None,
                         api_key_env=None)  # greedy: the student's most likely answer
        results = client.chat_many(role, [[{"role": "user", "content": i["prompt"]}]
                                          for i in chosen], seed=seed)
        answers = [getattr(r, "text", None) for r in results]
    general = general_records(chosen, answers, base_id or "")
    records = safety + general
    metrics = {
        "safety_rows": len(safety),
        "excluded_as_eval_prompts": len(seeds) - len(clean)
        + len(instructions) - len(instructions_clean),
        "safety_from_responder": sum(r["refusal_source"] == "responder" for r in safety),
        "safety_distinct_refusals": len({r["response"] for r in safety}),
        "general_rows": len(general),
        "general_unanswered": len(chosen) - len(general),
        "general_mean_answer_chars": round(
            sum(len(r["response"]) for r in general) / len(general), 1) if general else 0.0,
        "refusal_source": source,
    }
    return {"records": records, "metrics": metrics}


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--seeds", "--refusals", "--instructions", "--test-split", "--out",
                 "--reports"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    seeds = read_prompts(args.seeds, "seeds")
    refusals = validate_refusals(read_jsonl_numbered(args.refusals), args.refusals)
    instructions = read_prompts(args.instructions, "general instructions")

    from falsereject.llm import LLMClient, require_credentials
    from falsereject.llm.local.student import register_student

    if refusal_source(p) == "responder":
        require_credentials([p.llm.roles.responder])
    start = time.perf_counter()
    client = LLMClient("sft_data")
    base_id = register_student(p.model) if p.sft.general.n_instructions else None
    out = run(p, seeds, refusals, instructions, client=client, base_id=base_id,
              exclude=eval_prompts(p, args.test_split))
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    write_jsonl(args.out, out["records"])
    rep = Path(args.reports)
    write_json(rep / "metrics.json", out["metrics"])
    write_json(rep / "timing.json", {"wall_s": round(time.perf_counter() - start, 2),
                                     "rows": len(out["records"])})
    client.write_ledger(rep)
    m = out["metrics"]
    print(f"sft_data: {m['safety_rows']} safety pairs ({m['refusal_source']}, "
          f"{m['safety_distinct_refusals']} distinct refusals), {m['general_rows']} general "
          f"answers by the base student -> {args.out}")


if __name__ == "__main__":
    stage.entrypoint(main)
