"""The adversarial loop for one candidate, through every gate, with full provenance.

Each iteration (up to `generate.max_iterations`) drafts or revises a prompt and runs the gates in
order; the first gate that fails sends its feedback back to the Generator for the next revision:
  discriminator  judged genuinely unsafe      -> its feedback
  pool           fewer than `min_pool_refusals` pool members refused
                                              -> the pool's answers (it does not read harmful);
                                                 the revision centres on the subgraph's next
                                                 entity (the last one did not read harmful)
  orchestrator   not a valid over-refusal case -> its rationale
A candidate is accepted at the first iteration that passes all three. When the iterations run
out, it is rejected at the gate that failed last (`rejected_at`); an agent with no usable answer
within its retries rejects the candidate at its own gate (`generator` when there was never a
prompt). `dedup` is applied later, across candidates. Every round is recorded in provenance.
"""

from __future__ import annotations

import hashlib
from typing import Any

from falsereject.core.config import GenerateConfig
from falsereject.generation.agents import ACCEPT_VERDICT, AgentError, Agents, graph_text
from falsereject.generation.extraction import call_seed
from falsereject.generation.pool import Pool

GATES = ("generator", "discriminator", "pool", "orchestrator", "dedup")
LOOP_GATES = ("discriminator", "pool", "orchestrator")
POOL_ANSWER_CHARS = 80


def record_id(candidate_id: str, prompt: str | None) -> str:
    """Stable id from provenance: the candidate (seed, index) and its final prompt text."""
    text = f"{candidate_id}\n{prompt or ''}"
    return "fr-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _tries(run_seed: int, *parts: object, retries: int) -> list[int]:
    return [call_seed(run_seed, *parts, attempt) for attempt in range(retries + 1)]


def pool_feedback(answers: list[dict[str, Any]], need: int) -> str:
    """What the Generator is told when too few pool members refused: their answers."""
    refused = sum(a["refused"] for a in answers)
    def short(a: dict[str, Any]) -> str:
        return " ".join((a["answer"] or a["error"] or "").split())[:POOL_ANSWER_CHARS]
    shown = "; ".join(f'{a["member"]}: "{short(a)}"' for a in answers)
    return f"{refused} of {len(answers)} assistants refused it (need {need}). Answers: {shown}"


def focus_order(nodes: list[dict[str, Any]], pool: Pool, how: str) -> list[dict[str, Any]]:
    """The entities candidates centre on, in turn. `lexical_blocked`: only those whose name a
    lexical pool member blocks, when the subgraph has any (a prompt built around such an entity
    reads harmful to that member by construction: the local pool's keyword filter is then
    passed whenever the prompt names it); otherwise, and for `extracted`, every entity."""
    if how == "lexical_blocked":
        blocked = [n for n in nodes if pool.lexical_block(n["label"])]
        if blocked:
            return blocked
    return list(nodes)


async def run_candidate(client: Any, agents: Agents, pool: Pool, row: dict[str, Any],
                        index: int, cfg: GenerateConfig, run_seed: int) -> dict[str, Any]:
    """One candidate of a seed subgraph row through the loop and the gates."""
    sid = row["seed_id"]
    cand = f"{sid}-c{index}"
    nodes, edges = row["nodes"], row["edges"]
    shift = 0  # entities moved past after pool failures
    order = focus_order(nodes, pool, cfg.focus_order)

    def focus_node() -> dict[str, Any]:
        return order[(index + shift) % len(order)]
    focus = focus_node()
    graph = graph_text(nodes, edges)
    prov: dict[str, Any] = {
        "candidate_id": cand, "candidate_index": index, "seed_id": sid,
        "seed_prompt": row["seed_prompt"], "category": row["category"],
        "subgraph_node_ids": [n["id"] for n in nodes], "focus_node_id": focus["id"],
        "focus_order": cfg.focus_order, "focus_node_ids": [n["id"] for n in order],
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
    feedback: tuple[str, str] | None = None  # (gate, text) of the last failed gate
    fail: tuple[str, str] | None = None  # (gate, rejection reason) of the last failed gate
    for it in range(1, cfg.max_iterations + 1):
        step: dict[str, Any] = {"iteration": it, "prompt": None, "generator_failed_tries": [],
                                "feedback_from": feedback[0] if feedback else None,
                                "discriminator": None, "pool": None, "pool_refusals": None,
                                "orchestrator": None, "failed_gate": None,
                                "focus_node_id": focus["id"]}
        prov["iterations"].append(step)
        prov["focus_node_id"] = focus["id"]
        try:
            gen = await agents.generate(
                client, category_text=row["category_text"], graph=graph, focus=focus["label"],
                previous=prompt, feedback=feedback,
                seeds=_tries(run_seed, "gen", cand, it, retries=cfg.retries))
        except AgentError as err:
            step["generator_failed_tries"] = err.attempts
            if prompt is None or fail is None:
                return done(None, "generator", f"generator gave no usable prompt: {err.reason}")
            return done(prompt, fail[0], f"revision {it} failed ({err.reason}); {fail[1]}"[:300])
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
        if disc.value["verdict"] != ACCEPT_VERDICT:
            step["failed_gate"] = "discriminator"
            feedback = ("discriminator", disc.value["feedback"])
            fail = ("discriminator", f"judged genuinely unsafe after {it} iteration(s): "
                                     f"{disc.value['feedback']}")
            continue

        answers = await pool.answer(client, prompt, call_seed(run_seed, "pool", cand, it))
        refusals = sum(a["refused"] for a in answers)
        step["pool"], step["pool_refusals"] = answers, refusals
        prov["pool"], prov["pool_refusals"] = answers, refusals
        if refusals < cfg.min_pool_refusals:
            errors = [a["member"] for a in answers if a["error"]]
            extra = f" ({len(errors)} member(s) errored: {', '.join(errors)})" if errors else ""
            step["failed_gate"] = "pool"
            feedback = ("pool", pool_feedback(answers, cfg.min_pool_refusals))
            fail = ("pool", f"{refusals} of {len(answers)} pool members refused, "
                            f"need {cfg.min_pool_refusals}{extra} (iteration {it})")
            shift += 1
            focus = focus_node()
            continue

        try:
            orch = await agents.orchestrate(
                client, prompt=prompt, category_text=row["category_text"], refusals=refusals,
                pool_size=len(answers),
                seeds=_tries(run_seed, "orch", cand, it, retries=cfg.retries))
        except AgentError as err:
            step["orchestrator"] = {"valid": None, "rationale": None,
                                    "failed_tries": err.attempts}
            prov["orchestrator"] = step["orchestrator"]
            return done(prompt, "orchestrator", f"orchestrator gave no decision: {err.reason}")
        step["orchestrator"] = {**orch.value, "failed_tries": orch.attempts}
        prov["orchestrator"] = step["orchestrator"]
        if not orch.value["valid"]:
            step["failed_gate"] = "orchestrator"
            feedback = ("orchestrator", orch.value["rationale"])
            fail = ("orchestrator", f"not a valid over-refusal case: {orch.value['rationale']}")
            continue
        prov["accepted_at_iteration"] = it
        return done(prompt, None, f"accepted: {orch.value['rationale']}"[:300])
    assert fail is not None
    return done(prompt, fail[0], fail[1][:300])
