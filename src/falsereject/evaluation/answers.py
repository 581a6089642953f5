"""Answer a benchmark with every model under test and judge the answers.

Models under test: the base student, every fine-tuned arm of `sft.arms` (all served as
`local/...` models through the LLM client, so the local engine batches their concurrent
requests), and any extra LiteLLM models from `eval.extra_models`. Reasoning traces are split from the final answer
before judging.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from falsereject.core import progress
from falsereject.core.config import EvalGenerationConfig, RoleModel
from falsereject.evaluation.benchmarks import Sample
from falsereject.evaluation.judge import UNDETERMINED, Judge, Verdict, split_reasoning

BASE = "base"


@dataclass(frozen=True)
class ModelUnderTest:
    name: str  # base | an arm name | a snake_case name derived from an extra model id
    role: RoleModel


def extra_model_name(model_id: str) -> str:
    """`openai/gpt-4o-2024-08-06` -> `gpt_4o_2024_08_06`: usable as a metric-key prefix."""
    tail = model_id.split("/")[-1].lower()
    return re.sub(r"[^a-z0-9]+", "_", tail).strip("_") or "model"


def student_role(model_id: str, gen: EvalGenerationConfig, mode: str = "instruct") -> RoleModel:
    """The student's sampling; its length budget per answer mode (`instruct`: a four-part
    answer, `cot`: a trace that closes, then the answer)."""
    return RoleModel(model=model_id, temperature=gen.temperature, top_p=1.0,
                     max_tokens=getattr(gen.max_tokens, mode), api_base_env=None,
                     api_key_env=None)


def models_under_test(base_id: str, arm_ids: dict[str, str], gen: EvalGenerationConfig,
                      extras: Sequence[RoleModel], arm_mode: str = "instruct"
                      ) -> list[ModelUnderTest]:
    """Base student (instruct), then every arm (name -> model id, answering in `arm_mode`, the
    sft.mode it was trained on) in order, then the extra models."""
    models = [ModelUnderTest(BASE, student_role(base_id, gen))]
    models += [ModelUnderTest(arm, student_role(mid, gen, arm_mode))
               for arm, mid in arm_ids.items()]
    names = {BASE, *arm_ids}
    for role in extras:
        name = extra_model_name(role.model)
        while name in names:
            name += "_x"
        names.add(name)
        models.append(ModelUnderTest(name, role))
    return models


def messages(prompt: str, system_prompt: str | None) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return msgs + [{"role": "user", "content": prompt}]


async def answer(client: Any, mut: ModelUnderTest, samples: Sequence[Sample],
                 system_prompt: str | None, seed: int) -> list[Any]:
    """ChatResult or LLMCallError per sample, requested concurrently (the engine batches)."""
    from falsereject.llm import LLMCallError

    async def one(s: Sample) -> Any:
        try:
            return await client.achat(mut.role, messages(s.prompt, system_prompt), seed=seed)
        except LLMCallError as err:
            return err

    return await progress.gather((one(s) for s in samples), f"answers of {mut.name}", "prompts")


def record(s: Sample, mut: ModelUnderTest, result: Any, verdict: Verdict | None) -> dict:
    """One row of verdicts.jsonl."""
    text = getattr(result, "text", None)
    final, trace, has_answer = split_reasoning(text, getattr(result, "reasoning", None))
    row = {
        "benchmark": s.benchmark, "sample_id": s.id, "model": mut.name,
        "model_id": mut.role.model, "prompt": s.prompt, "label": s.label,
        "category": s.category, "response": final if text is not None else None,
        "reasoning": trace, "finish_reason": getattr(result, "finish_reason", None),
    }
    if verdict is None:  # generation failed for good
        reason = getattr(result, "reason", "error")
        row.update(verdict=UNDETERMINED, judge_route="none", judge_rule=f"generation_error:"
                   f"{reason}", judge_output=None, judge_id=None)
    else:
        row.update(verdict=verdict.verdict, judge_route=verdict.route, judge_rule=verdict.rule,
                   judge_output=verdict.judge_output, judge_id=verdict.judge_id)
    return row


async def evaluate(client: Any, judge: Judge, models: Sequence[ModelUnderTest],
                   samples: Sequence[Sample], *, system_prompt: str | None,
                   seed: int) -> list[dict[str, Any]]:
    """Every (sample, model) answered and judged; rows sorted by (sample_id, model)."""
    rows = []
    for mut in models:  # one model at a time: its requests fill the engine's batches
        results = await answer(client, mut, samples, system_prompt, seed)
        pending = []
        for s, res in zip(samples, results, strict=True):
            if getattr(res, "text", None) is None:
                rows.append(record(s, mut, res, None))
                continue
            final, _, has_answer = split_reasoning(res.text, getattr(res, "reasoning", None))
            pending.append((s, res, (s.prompt, final, has_answer)))
        verdicts = await judge.ajudge_many([p[2] for p in pending])
        rows += [record(s, mut, res, v) for (s, res, _), v in zip(pending, verdicts, strict=True)]
    return sorted(rows, key=lambda r: (r["sample_id"], r["model"]))
