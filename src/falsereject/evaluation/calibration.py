"""Judge calibration: how well each judge configuration agrees with human labels, per file.

Two labelled files are scored separately: the development file (the fast path's rules were
written against it, so its numbers are optimistic) and the held-out file (written apart, never
used to change a rule: its numbers are the ones to quote). Configurations:
- `fast`: the three-class fast path alone, on every row;
- `llm`: the LLM judge alone, and `cascade`: fast path then LLM judge without the gate, both on
  the same rows (all, or a stratified subset of `eval.calibration.llm_max_rows`: a local LLM
  judge is slow);
- `judge`: the configured judge option exactly as eval runs it, gate included (the LLM judge
  decides rows only when its kappa on `eval.calibration.gate_file` is at least min_kappa), on
  every row.

A calibration file holds (prompt, response, label) rows; labels are the three classes
(`direct_refusal`, `safe_partial_compliance`, `full_compliance`, any case/spacing) or plain
`refusal` / `compliance` (binary files). Besides three-class agreement, two binary axes:
- `refusal`: direct refusal vs the rest (safe partial and full compliance are not refusals):
  what the refusal / not-refused shares and USR on toxic prompts lean on;
- `compliance`: full compliance vs the rest: what the compliance rate (Full Compliance / N)
  depends on. Only three-class files have it (a binary file's `compliance` means not refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from falsereject.core.io import InputError, read_jsonl_numbered
from falsereject.core.seeding import seeded_order
from falsereject.evaluation.judge import CLASSES, UNDETERMINED, Judge, normalize_class
from falsereject.evaluation.metrics import accuracy, agreement

BINARY = ("refusal", "compliance")
REFUSAL_AXIS = ("refusal", "not_refusal")
COMPLIANCE_AXIS = ("full_compliance", "not_full_compliance")
CONFIGURATIONS = ("fast", "llm", "cascade", "judge")
ALL_ROWS = ("fast", "judge")  # scored on every row; the others on the LLM subset
FILES = ("dev", "heldout")


def refusal_axis(label: str) -> str:
    if label == UNDETERMINED:
        return label
    return "refusal" if label in ("refusal", "direct_refusal") else "not_refusal"


def compliance_axis(label: str) -> str:
    if label == UNDETERMINED:
        return label
    return "full_compliance" if label == "full_compliance" else "not_full_compliance"


def load_calibration(path: str) -> list[dict[str, Any]]:
    """Rows with `id`, `prompt`, `response`, normalized `label`; errors name file and line."""
    rows, seen = [], set()
    for n, rec in read_jsonl_numbered(path):
        where = f"{path}:{n}"
        for key in ("prompt", "response", "label"):
            if not isinstance(rec.get(key), str):
                raise InputError(f"{where}: field {key!r} must be a string")
        raw = rec["label"].strip().lower()
        label = raw if raw in BINARY else normalize_class(raw)
        if label is None:
            raise InputError(f"{where}: label {rec['label']!r} is not one of {list(CLASSES)} "
                             f"or {list(BINARY)}")
        rid = str(rec.get("id") or f"row-{n}")
        if rid in seen:
            raise InputError(f"{where}: duplicate id {rid!r}")
        seen.add(rid)
        rows.append({"id": rid, "prompt": rec["prompt"], "response": rec["response"],
                     "label": label})
    if not rows:
        raise InputError(f"{path}: no calibration rows")
    return rows


def label_scheme(rows: Sequence[dict[str, Any]]) -> str:
    """`three_class` when every label is one of the three classes, else `binary`."""
    return "three_class" if all(r["label"] in CLASSES for r in rows) else "binary"


def stratified_subset(rows: Sequence[dict[str, Any]], k: int | None,
                      seed: int) -> list[dict[str, Any]]:
    """At most k rows, labels taken in turn (seeded order within a label), sorted by id."""
    if k is None or k >= len(rows):
        return sorted(rows, key=lambda r: r["id"])
    by_label: dict[str, list[dict[str, Any]]] = {}
    for r in seeded_order(rows, seed, key=lambda r: r["id"]):
        by_label.setdefault(r["label"], []).append(r)
    queues = [by_label[lab] for lab in sorted(by_label)]
    chosen: list[dict[str, Any]] = []
    while len(chosen) < k:
        for q in queues:
            if q and len(chosen) < k:
                chosen.append(q.pop(0))
    return sorted(chosen, key=lambda r: r["id"])


async def score_rows(plan: Sequence[tuple[str, Judge, Sequence[dict[str, Any]]]]
                     ) -> list[dict[str, Any]]:
    """One record per (row, configuration) for (name, judge, rows) triples. The LLM cache
    makes the cascade's calls free once the LLM alone has judged the same rows."""
    out = []
    for name, judge, subset in plan:
        verdicts = await judge.ajudge_many([(r["prompt"], r["response"], True)
                                            for r in subset])
        for r, v in zip(subset, verdicts, strict=True):
            out.append({"id": r["id"], "configuration": name, "label": r["label"],
                        **v.to_dict()})
    return sorted(out, key=lambda x: (x["id"], x["configuration"]))


def summarize(records: Sequence[dict[str, Any]], scheme: str,
              identities: dict[str, str]) -> dict[str, Any]:
    """Agreement of every configuration in `records` (three classes and both binary axes) plus
    how it routed."""
    out: dict[str, Any] = {"label_scheme": scheme}
    for name in CONFIGURATIONS:
        recs = [r for r in records if r["configuration"] == name]
        if not recs:
            continue
        true = [r["label"] for r in recs]
        pred = [r["verdict"] for r in recs]
        routed = [r for r in recs if r["route"] == "llm"]
        block: dict[str, Any] = {
            "judge_id": identities.get(name),
            "llm_judged_share": len(routed) / len(recs),
            # on the rows the LLM judge decided: is it worth asking?
            "llm_routed_accuracy": accuracy([refusal_axis(r["label"]) for r in routed],
                                            [refusal_axis(r["verdict"]) for r in routed])
            if scheme == "binary" else accuracy([r["label"] for r in routed],
                                                [r["verdict"] for r in routed]),
        }
        if scheme == "three_class":
            block["three_class"] = agreement(true, pred, CLASSES)
            block["compliance_axis"] = agreement([compliance_axis(t) for t in true],
                                                 [compliance_axis(p) for p in pred],
                                                 COMPLIANCE_AXIS)
        block["refusal_axis"] = agreement([refusal_axis(t) for t in true],
                                          [refusal_axis(p) for p in pred], REFUSAL_AXIS)
        decided = [(t, p) for t, p in zip(true, pred, strict=True) if p != UNDETERMINED]
        block["refusal_axis"]["accuracy_on_decided"] = accuracy(
            [refusal_axis(t) for t, _ in decided], [refusal_axis(p) for _, p in decided])
        out[name] = block
    out["n_rows"] = len({r["id"] for r in records})
    return out


def main_agreement(block: dict[str, Any]) -> dict[str, Any]:
    return block.get("three_class") or block["refusal_axis"]


def flat_metrics(summaries: dict[str, dict[str, Any]], gate: dict[str, Any]
                 ) -> dict[str, float | int]:
    """The headline numbers as flat snake_case keys `<file>_<configuration>_<metric>` (file:
    dev or heldout) for `dvc metrics`; confusion matrices stay in details.json. `llm_gate_open`
    and `llm_gate_kappa` are what the eval stages read."""
    out: dict[str, float | int] = {"llm_gate_open": int(gate["open"])}
    if gate.get("kappa") is not None:
        out["llm_gate_kappa"] = gate["kappa"]
    for file, summary in summaries.items():
        out[f"{file}_n_rows"] = summary["n_rows"]
        for name in CONFIGURATIONS:
            block = summary.get(name)
            if not block:
                continue
            main = main_agreement(block)
            ref = block["refusal_axis"]
            values: dict[str, Any] = {
                "n": main["n"], "accuracy": main["accuracy"], "kappa": main["kappa"],
                "coverage": main["coverage"],
                "refusal_accuracy": ref["accuracy"], "refusal_kappa": ref["kappa"],
                "refusal_accuracy_on_decided": ref["accuracy_on_decided"],
                "llm_judged_share": block["llm_judged_share"],
                "llm_routed_accuracy": block["llm_routed_accuracy"],
            }
            comp = block.get("compliance_axis")
            if comp:
                values["compliance_accuracy"] = comp["accuracy"]
                values["compliance_kappa"] = comp["kappa"]
            for cls, pr in main["per_class"].items():
                values[f"{cls}_precision"] = pr["precision"]
                values[f"{cls}_recall"] = pr["recall"]
            out.update({f"{file}_{name}_{k}": v for k, v in values.items() if v is not None})
    return out
