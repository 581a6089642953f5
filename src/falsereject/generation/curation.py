"""After the loop: dedup, output rows, the split, and the yield metrics.

Pure functions over candidate records (as `loop.run_candidate` returns them): accepted ones are
deduplicated in id order (stage generate); stage split splits the survivors into train/test
grouped by seed; the metrics count every gate and every loop iteration.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from falsereject.core.config import GenerateConfig
from falsereject.core.taxonomy import CATEGORIES
from falsereject.generation.dedup import dedup
from falsereject.generation.diversity import diversity_metrics
from falsereject.generation.loop import GATES

ROW_KEYS = ("id", "prompt", "category", "category_text", "seed_id")


def apply_dedup(candidates: list[dict[str, Any]], cfg: GenerateConfig,
                embed: Callable[[Sequence[str]], Any] | None) -> list[dict[str, Any]]:
    """Candidates with near-duplicate accepted prompts turned into `dedup` rejections."""
    out = sorted(candidates, key=lambda c: c["id"])
    accepted = [c for c in out if c["status"] == "accepted"]
    drops = dedup([c["prompt"] for c in accepted], method=cfg.dedup.method,
                  threshold=cfg.dedup.threshold, embed=embed, ngram_n=cfg.dedup.ngram_n)
    for i, dup in drops.items():
        c, kept = accepted[i], accepted[dup.duplicate_of]
        reason = (f"near-duplicate of {kept['id']} ({cfg.dedup.method} similarity "
                  f"{dup.similarity:.3f} >= {cfg.dedup.threshold})")
        c["provenance"]["dedup"] = {"duplicate_of": kept["id"], "similarity": dup.similarity,
                                    "method": cfg.dedup.method}
        c["provenance"]["decision"] = {"status": "rejected", "rejected_at": "dedup",
                                       "reason": reason}
        c.update(status="rejected", rejected_at="dedup", reason=reason)
    return out


def accepted_rows(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accepted rows {id, prompt, category, category_text, seed_id, provenance}, sorted by id."""
    rows = [{**{k: c[k] for k in ROW_KEYS}, "provenance": c["provenance"]}
            for c in candidates if c["status"] == "accepted"]
    return sorted(rows, key=lambda r: r["id"])


def rejected_rows(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**{k: c[k] for k in ROW_KEYS}, "rejected_at": c["rejected_at"],
             "reason": c["reason"], "provenance": c["provenance"]}
            for c in candidates if c["status"] == "rejected"]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def iteration_metrics(candidates: list[dict[str, Any]], max_iterations: int) -> dict[str, Any]:
    """Per loop iteration: candidates reaching it, the pass rate at each gate among those that
    reached the gate, the pool's refusal rate over all its answers, and acceptance."""
    m: dict[str, Any] = {}
    for it in range(1, max_iterations + 1):
        steps = [c["provenance"]["iterations"][it - 1] for c in candidates
                 if len(c["provenance"]["iterations"]) >= it]
        disc = [s for s in steps if s["discriminator"] and s["discriminator"].get("verdict")]
        disc_ok = [s for s in disc if s["failed_gate"] != "discriminator"]
        pooled = [s for s in steps if s.get("pool")]
        pool_ok = [s for s in pooled if s["failed_gate"] != "pool"]
        orch = [s for s in steps if s.get("orchestrator") and s["orchestrator"].get("valid")
                is not None]
        orch_ok = [s for s in orch if s["orchestrator"]["valid"]]
        answers = [a["refused"] for s in pooled for a in s["pool"]]
        m[f"iter_{it}_reached_count"] = len(steps)
        m[f"iter_{it}_discriminator_accept_rate"] = _rate(len(disc_ok), len(disc))
        m[f"iter_{it}_pool_refusal_rate"] = _rate(sum(answers), len(answers))
        m[f"iter_{it}_pool_pass_rate"] = _rate(len(pool_ok), len(pooled))
        m[f"iter_{it}_orchestrator_accept_rate"] = _rate(len(orch_ok), len(orch))
        m[f"iter_{it}_accepted_count"] = sum(
            1 for c in candidates if c["provenance"]["accepted_at_iteration"] == it)
        fb = Counter(s["feedback_from"] for s in steps if s.get("feedback_from"))
        for gate in ("discriminator", "pool", "orchestrator"):
            if it > 1:
                m[f"iter_{it}_feedback_from_{gate}_count"] = fb.get(gate, 0)
    return m


def yield_metrics(candidates: list[dict[str, Any]], cfg: GenerateConfig,
                  pool_members: Sequence[str], embed: Callable[[Sequence[str]], Any] | None,
                  usage: dict[str, Any], seeds_in: int, seeds_used: int) -> dict[str, Any]:
    """Flat metrics: counts at each gate, per-iteration acceptance, pool refusal rates,
    diversity, coverage and LLM usage per accepted prompt."""
    n = len(candidates)
    rejected_at = Counter(c["rejected_at"] for c in candidates if c["status"] == "rejected")
    generated = n - rejected_at["generator"]
    disc_ok = generated - rejected_at["discriminator"]
    pool_ok = disc_ok - rejected_at["pool"]
    orch_ok = pool_ok - rejected_at["orchestrator"]
    final = [c for c in candidates if c["status"] == "accepted"]
    m: dict[str, Any] = {
        "seeds_input_count": seeds_in,
        "seeds_used_count": seeds_used,
        "candidates_count": n,
        "generated_count": generated,
        "discriminator_accepted_count": disc_ok,
        "pool_refused_count": pool_ok,
        "orchestrator_accepted_count": orch_ok,
        "dedup_kept_count": len(final),
        "accepted_count": len(final),
        "yield_rate": _rate(len(final), n),
    }
    for gate in GATES:
        m[f"rejected_at_{gate}_count"] = rejected_at.get(gate, 0)
    m.update(iteration_metrics(candidates, cfg.max_iterations))
    judged = [c for c in candidates if c["provenance"]["pool"]]
    m["pool_evaluated_count"] = len(judged)
    pool_rounds = [s["pool"] for c in candidates for s in c["provenance"]["iterations"]
                   if s.get("pool")]
    m["pool_rounds_count"] = len(pool_rounds)
    member_rates = []
    for name in pool_members:  # over every pool round of every iteration
        marks = [a["refused"] for answers in pool_rounds for a in answers
                 if a["member"] == name]
        m[f"pool_refusal_rate_{_slug(name)}"] = _rate(sum(marks), len(marks))
        final_marks = [a["refused"] for c in final for a in c["provenance"]["pool"]
                       if a["member"] == name]
        if final_marks:
            member_rates.append(sum(final_marks) / len(final_marks))
    # refusal rate of the generation pool on the accepted prompts: >= min_pool_refusals by
    # construction, NOT the paper's Table-1 rejection rate (that is stage `compare`, by a fixed
    # evaluation pool)
    m["generation_pool_rejection_rate_accepted_mean"] = (round(sum(member_rates) / len(member_rates), 6)
                                         if member_rates else None)
    m.update(diversity_metrics([c["prompt"] for c in final], embed))
    covered = {c["category"] for c in final}
    m["categories_covered_count"] = len(covered)
    m["categories_total_count"] = len(CATEGORIES)
    m["llm_requests_count"] = usage["requests"]
    m["llm_tokens_count"] = usage["tokens"]
    m["llm_cost_usd"] = usage["cost_usd"]
    k = len(final)
    m["llm_requests_per_accepted"] = round(usage["requests"] / k, 3) if k else None
    m["llm_tokens_per_accepted"] = round(usage["tokens"] / k, 1) if k else None
    m["llm_cost_usd_per_accepted"] = (round(usage["cost_usd"] / k, 6)
                                      if k and usage["cost_usd"] is not None else None)
    return m


def upstream_usage(stage: str, metrics: dict[str, Any], accepted: int) -> dict[str, Any]:
    """An upstream stage's LLM requests and tokens (from its metrics), per accepted prompt."""
    req, tok = metrics.get("llm_requests_count"), metrics.get("llm_tokens_count")
    return {f"{stage}_llm_requests_count": req, f"{stage}_llm_tokens_count": tok,
            f"{stage}_llm_requests_per_accepted": round(req / accepted, 3)
            if accepted and req is not None else None,
            f"{stage}_llm_tokens_per_accepted": round(tok / accepted, 1)
            if accepted and tok is not None else None}
