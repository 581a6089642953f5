"""The adversarial loop for one candidate, through every gate, with full provenance.

Gates, in order (the first one a candidate fails is its `rejected_at`):
  generator      no usable prompt within the retries
  discriminator  still judged genuinely unsafe after `max_iterations` revisions
  pool           fewer than `min_pool_refusals` pool members refused
  orchestrator   not confirmed as a valid over-refusal case
(`dedup` is applied later, across candidates.)
"""

from __future__ import annotations

import hashlib
from typing import Any

from falsereject.core.config import GenerateConfig
from falsereject.generation.agents import ACCEPT_VERDICT, AgentError, Agents, graph_text
from falsereject.generation.extraction import call_seed
from falsereject.generation.pool import Pool

GATES = ("generator", "discriminator", "pool", "orchestrator", "dedup")


def record_id(candidate_id: str, prompt: str | None) -> str:
    """Stable id from provenance: the candidate (seed, index) and its final prompt text."""
    text = f"{candidate_id}\n{prompt or ''}"
    return "fr-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _tries(run_seed: int, *parts: object, retries: int) -> list[int]:
    return [call_seed(run_seed, *parts, attempt) for attempt in range(retries + 1)]


async def run_candidate(client: Any, agents: Agents, pool: Pool, row: dict[str, Any],
                        index: int, cfg: GenerateConfig, run_seed: int) -> dict[str, Any]:
    """One candidate of a seed subgraph row through the loop and the gates."""
    sid = row["seed_id"]
    cand = f"{sid}-c{index}"
    nodes, edges = row["nodes"], row["edges"]
    focus = nodes[index % len(nodes)]
    graph = graph_text(nodes, edges)
    prov: dict[str, Any] = {
        "candidate_id": cand, "candidate_index": index, "seed_id": sid,
        "seed_prompt": row["seed_prompt"], "category": row["category"],
        "subgraph_node_ids": [n["id"] for n in nodes], "focus_node_id": focus["id"],
        "iterations": [], "accepted_at_iteration": None, "pool": [], "pool_refusals": None,
        "min_pool_refusals": cfg.min_pool_refusals, "orchestrator": None,
        "models": {"generator": agents.generator.model,
                   "discriminator": agents.discriminator.model,
                   "orchestrator": agents.orchestrator.model, "pool": pool.model_ids()},
        "templates": agents.templates(),
    }

    def done(prompt: str | None, rejected_at: str | None, reason: str) -> dict[str, Any]:
        prov["decision"] = {"status": "rejected" if rejected_at else "accepted",
                            "rejected_at": rejected_at, "reason": reason}
        return {"id": record_id(cand, prompt), "prompt": prompt, "category": row["category"],
                "category_text": row["category_text"], "seed_id": sid,
                "status": prov["decision"]["status"], "rejected_at": rejected_at,
                "reason": reason, "provenance": prov}

    prompt: str | None = None
    feedback: str | None = None
    for it in range(1, cfg.max_iterations + 1):
        step: dict[str, Any] = {"iteration": it, "prompt": None, "generator_failed_tries": [],
                                "discriminator": None}
        prov["iterations"].append(step)
        try:
            gen = await agents.generate(
                client, category_text=row["category_text"], graph=graph, focus=focus["label"],
                previous=prompt, feedback=feedback,
                seeds=_tries(run_seed, "gen", cand, it, retries=cfg.retries))
        except AgentError as err:
            step["generator_failed_tries"] = err.attempts
            if prompt is None:
                return done(None, "generator", f"generator gave no usable prompt: {err.reason}")
            return done(prompt, "discriminator",
                        f"revision {it} failed ({err.reason}); last verdict was not accepted")
        prompt = gen.value["prompt"]
        step["prompt"] = prompt
        step["generator_failed_tries"] = gen.attempts
        try:
            disc = await agents.discriminate(
                client, prompt, seeds=_tries(run_seed, "disc", cand, it, retries=cfg.retries))
        except AgentError as err:
            step["discriminator"] = {"verdict": None, "feedback": None,
                                     "failed_tries": err.attempts}
            return done(prompt, "discriminator", f"discriminator gave no verdict: {err.reason}")
        step["discriminator"] = {**disc.value, "failed_tries": disc.attempts}
        feedback = disc.value["feedback"]
        if disc.value["verdict"] == ACCEPT_VERDICT:
            prov["accepted_at_iteration"] = it
            break
    if prov["accepted_at_iteration"] is None:
        return done(prompt, "discriminator",
                    f"judged genuinely unsafe after {cfg.max_iterations} iteration(s): "
                    f"{feedback or ''}"[:300])

    answers = await pool.answer(client, prompt, call_seed(run_seed, "pool", cand))
    refusals = sum(a["refused"] for a in answers)
    prov["pool"], prov["pool_refusals"] = answers, refusals
    if refusals < cfg.min_pool_refusals:
        errors = [a["member"] for a in answers if a["error"]]
        extra = f" ({len(errors)} member(s) errored: {', '.join(errors)})" if errors else ""
        return done(prompt, "pool", f"{refusals} of {len(answers)} pool members refused, "
                                    f"need {cfg.min_pool_refusals}{extra}")
    try:
        orch = await agents.orchestrate(
            client, prompt=prompt, category_text=row["category_text"], refusals=refusals,
            pool_size=len(answers), seeds=_tries(run_seed, "orch", cand, retries=cfg.retries))
    except AgentError as err:
        prov["orchestrator"] = {"valid": None, "rationale": None, "failed_tries": err.attempts}
        return done(prompt, "orchestrator", f"orchestrator gave no decision: {err.reason}")
    prov["orchestrator"] = {**orch.value, "failed_tries": orch.attempts}
    if not orch.value["valid"]:
        return done(prompt, "orchestrator",
                    f"not a valid over-refusal case: {orch.value['rationale']}"[:300])
    return done(prompt, None, f"accepted: {orch.value['rationale']}"[:300])
