"""Run the responder over many prompts: concurrent calls, bounded regeneration, drop reasons.

Each (prompt, mode) needs one call (strategy single) or one call per part (per_part). All
pending calls of a round are issued at once so the embedded engine batches them; units that
fail the checker go to the next round with a new seed (and at least `retry_min_temperature`),
up to `max_attempts`. A record is kept only when both its instruct and cot responses pass;
otherwise it is dropped with the first failing unit's last reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from falsereject.core import progress
from falsereject.core.config import RoleModel, StructureConfig
from falsereject.llm import LLMCallError
from falsereject.responses.structured import (
    ANSWER_PARTS,
    MODES,
    REASONING_PARTS,
    Outcome,
    Templates,
    evaluate_part,
    evaluate_single,
    join_parts,
    part_messages,
    single_messages,
    unit_seed,
)

Key = tuple[str, str, str | None]  # (record id, mode, part or None)


@dataclass(frozen=True)
class Unit:
    rid: str
    mode: str
    part: str | None
    messages: list[dict[str, str]]
    max_tokens: int

    @property
    def key(self) -> Key:
        return (self.rid, self.mode, self.part)


@dataclass
class UnitLog:
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    model: str | None = None


@dataclass
class StructureResult:
    kept: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    failures: Counter  # every failed attempt, by reason
    calls: int


def plan_units(record: dict[str, Any], t: Templates, cfg: StructureConfig) -> list[Unit]:
    rid, prompt = record["id"], record["prompt"]
    if cfg.strategy == "single":
        return [Unit(rid, mode, None, single_messages(t, mode, prompt),
                     getattr(cfg.single_max_tokens, mode)) for mode in MODES]
    answer_modes = MODES if cfg.cot_answer == "generate" else ("instruct",)
    units = [Unit(rid, mode, part, part_messages(t, part, prompt),
                  getattr(cfg.part_max_tokens, part))
             for mode in answer_modes for part in ANSWER_PARTS]
    units += [Unit(rid, "cot", part, part_messages(t, part, prompt),
                   getattr(cfg.part_max_tokens, part)) for part in REASONING_PARTS]
    return units


async def _attempt(client: Any, role: RoleModel, unit: Unit, attempt: int, run_seed: int,
                   t: Templates, cfg: StructureConfig) -> tuple[Outcome, str]:
    temperature = role.temperature if attempt == 0 else max(role.temperature,
                                                             cfg.retry_min_temperature)
    seed = unit_seed(run_seed, unit.rid, unit.mode, unit.part, attempt)
    try:
        res = await client.achat(role, unit.messages, max_tokens=unit.max_tokens,
                                 temperature=temperature, seed=seed)
    except LLMCallError as err:
        return Outcome(None, f"llm_error:{err.reason}"), role.model
    if unit.part is None:
        out = evaluate_single(unit.mode, res.text, res.reasoning, res.finish_reason, t, cfg)
    else:
        out = evaluate_part(unit.part, res.text, res.reasoning, res.finish_reason, cfg)
    return out, res.model


async def run_units(client: Any, role: RoleModel, units: list[Unit], t: Templates,
                    cfg: StructureConfig, run_seed: int) -> dict[Key, UnitLog]:
    logs = {u.key: UnitLog() for u in units}
    pending = list(units)
    for attempt in range(cfg.max_attempts):
        if not pending:
            break
        results = await progress.gather(
            (_attempt(client, role, u, attempt, run_seed, t, cfg) for u in pending),
            f"structure (attempt {attempt + 1})", "parts")
        still = []
        for unit, (out, model) in zip(pending, results, strict=True):
            log = logs[unit.key]
            log.attempts += 1
            log.model = model
            if out.reason is None:
                log.outcome = out
            else:
                log.failures.append(out.reason)
                still.append(unit)
        pending = still
    return logs


def _mode_response(record_id: str, mode: str, logs: dict[Key, UnitLog],
                   cfg: StructureConfig) -> tuple[Any, str | None]:
    """(instruct prose | cot dict, None) or (None, drop reason) for one record and mode."""
    if cfg.strategy == "single":
        log = logs[(record_id, mode, None)]
        if log.outcome is None:
            return None, f"{mode}:{log.failures[-1]}"
        value = log.outcome.value
        parts = value if mode == "instruct" else value["parts"]
        solution = join_parts(parts, ANSWER_PARTS)
        if mode == "instruct":
            return solution, None
        return {"reasoning_content": value["reasoning"], "solution": solution}, None
    answer_mode = mode if cfg.cot_answer == "generate" else "instruct"
    keys = [(answer_mode, p) for p in ANSWER_PARTS]
    keys += [("cot", p) for p in REASONING_PARTS] if mode == "cot" else []
    values = {}
    for unit_mode, part in keys:
        log = logs[(record_id, unit_mode, part)]
        if log.outcome is None:
            return None, f"{unit_mode}:{log.failures[-1]}"
        values[part] = log.outcome.value
    solution = join_parts(values, ANSWER_PARTS)
    if mode == "instruct":
        return solution, None
    return {"reasoning_content": join_parts(values, REASONING_PARTS), "solution": solution}, None


def _provenance(record_id: str, logs: dict[Key, UnitLog], role: RoleModel, t: Templates,
                cfg: StructureConfig) -> dict[str, Any]:
    mine = {k: v for k, v in logs.items() if k[0] == record_id}
    per_mode: dict[str, Any] = {}
    for (_, mode, part), log in sorted(mine.items(), key=lambda kv: (kv[0][1], kv[0][2] or "")):
        entry = {"attempts": log.attempts, "failures": log.failures}
        if log.outcome is not None and log.outcome.trimmed:
            entry["trimmed"] = True
        if part is None:
            per_mode[mode] = entry
        else:
            per_mode.setdefault(mode, {})[part] = entry
    models = sorted({log.model for log in mine.values() if log.model})
    return {"responder_model": role.model, "served_by": models, "strategy": cfg.strategy,
            "prompts_version": t.version, "prompts_sha256": t.sha256,
            "attempts": sum(log.attempts for log in mine.values()), "units": per_mode}


def cot_trace(record_id: str, logs: dict[Key, UnitLog], cfg: StructureConfig) -> str:
    """How the record's `reasoning_content` was made. `model_reasoning`: one call whose model
    reasoned (LiteLLM's `reasoning_content`) and then answered; `think_block`: one call, the
    reasoning taken from the model's `<think>` block; `stitched_parts` (strategy per_part): the
    safe reading, unsafe reading and plan written by separate short calls and joined. The last
    is not a trace that planned the answer (the embedded SmolLM2 cannot reason first)."""
    if cfg.strategy == "single":
        return logs[(record_id, "cot", None)].outcome.value["trace"]
    return "stitched_parts"


def resolve_strategy(cfg: StructureConfig, role: RoleModel) -> StructureConfig:
    """`auto`: `single` (one call that reasons, then answers) for any responder but the
    embedded model, which follows one short instruction at a time: `per_part` there."""
    if cfg.strategy != "auto":
        return cfg
    embedded = role.model.startswith("local/")
    return cfg.model_copy(update={"strategy": "per_part" if embedded else "single"})


def assemble(record: dict[str, Any], logs: dict[Key, UnitLog], role: RoleModel, t: Templates,
             cfg: StructureConfig) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(structured record, None) or (None, dropped record with its reason)."""
    rid = record["id"]
    prov = _provenance(rid, logs, role, t, cfg)
    instruct, reason = _mode_response(rid, "instruct", logs, cfg)
    cot, cot_reason = _mode_response(rid, "cot", logs, cfg)
    reason = reason or cot_reason
    prov["cot_trace"] = cot_trace(rid, logs, cfg) if cot else None
    if reason:
        return None, {"id": rid, "prompt": record["prompt"], "category": record["category"],
                      "reason": reason, "structure": prov}
    provenance = dict(record.get("provenance") or {})
    provenance.setdefault("seed_id", record.get("seed_id"))
    provenance["structure"] = prov
    return {"id": rid, "prompt": record["prompt"], "category": record["category"],
            "category_text": record["category_text"], "instruct_response": instruct,
            "cot_response": cot, "provenance": provenance}, None


async def structure_records(client: Any, role: RoleModel, records: list[dict[str, Any]],
                            t: Templates, cfg: StructureConfig, run_seed: int) -> StructureResult:
    """Structured responses for `records`; kept and dropped both sorted by id."""
    units = [u for r in records for u in plan_units(r, t, cfg)]
    logs = await run_units(client, role, units, t, cfg, run_seed)
    kept, dropped = [], []
    for record in sorted(records, key=lambda r: r["id"]):
        ok, bad = assemble(record, logs, role, t, cfg)
        (kept if ok else dropped).append(ok or bad)
    failures = Counter(f"{k[1]}:{reason}" for k, log in logs.items() for reason in log.failures)
    return StructureResult(kept, dropped, failures, sum(log.attempts for log in logs.values()))
