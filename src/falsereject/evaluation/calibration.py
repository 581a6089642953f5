"""Judge calibration: how well each judge configuration agrees with human labels.

`fast`, `llm` and `cascade` are scored on the same rows (all, or a stratified subset of
`eval.calibration.llm_max_rows` when the LLM judge is slow); `fast_all_rows` scores the
detector on every row when a subset was used.

A calibration file holds (prompt, response, label) rows; labels are the three classes
(`direct_refusal`, `safe_partial_compliance`, `full_compliance`, any case/spacing) or plain
`refusal` / `compliance`. Three configurations are scored on the same rows: the fast detector
alone, the LLM judge alone, and the cascade. Three-class files are also scored on the binary
refusal-vs-not axis, which is what the compliance rate depends on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from falsereject.core.config import JudgeConfig, RoleModel
from falsereject.core.io import InputError, read_jsonl_numbered
from falsereject.core.seeding import seeded_order
from falsereject.evaluation.judge import CLASSES, UNDETERMINED, Judge, normalize_class
from falsereject.evaluation.metrics import accuracy, agreement

BINARY = ("refusal", "compliance")
CONFIGURATIONS = ("fast", "llm", "cascade")
FAST_ALL = "fast_all_rows"


def to_binary(label: str) -> str:
    if label in BINARY or label == UNDETERMINED:
        return label
    return "refusal" if label == "direct_refusal" else "compliance"


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


def judges(cfg: JudgeConfig, role: RoleModel, template: str, client: Any) -> dict[str, Judge]:
    """The three configurations, sharing every other setting of `cfg`."""
    return {mode: Judge(cfg.model_copy(update={"mode": mode}), role, template, client)
            for mode in CONFIGURATIONS}


async def judge_rows(rows: Sequence[dict[str, Any]], configured: dict[str, Judge],
                     all_rows: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One record per (row, configuration); with `all_rows`, also the detector on all of them.
    The LLM cache makes the cascade's calls free once the LLM alone has judged the same rows."""
    out = []
    plan = [(name, judge, rows) for name, judge in configured.items()]
    if all_rows is not None and len(all_rows) > len(rows):
        plan.append((FAST_ALL, configured["fast"], all_rows))
    for name, judge, subset in plan:
        verdicts = await judge.ajudge_many([(r["prompt"], r["response"], True)
                                            for r in subset])
        for r, v in zip(subset, verdicts, strict=True):
            out.append({"id": r["id"], "configuration": name, "label": r["label"],
                        **v.to_dict()})
    return sorted(out, key=lambda x: (x["id"], x["configuration"]))


def summarize(records: Sequence[dict[str, Any]], scheme: str,
              identities: dict[str, str]) -> dict[str, Any]:
    """Agreement of every configuration (three-class and binary) plus how it routed."""
    out: dict[str, Any] = {"label_scheme": scheme}
    identities = {**identities, FAST_ALL: identities["fast"]}
    conv = (lambda x: x) if scheme == "three_class" else to_binary
    for name in (*CONFIGURATIONS, FAST_ALL):
        recs = [r for r in records if r["configuration"] == name]
        if not recs:
            continue
        true = [r["label"] for r in recs]
        pred = [r["verdict"] for r in recs]
        routed = [r for r in recs if r["route"] == "llm"]
        block: dict[str, Any] = {"judge_id": identities[name],
                                 "llm_judged_share": len(routed) / len(recs),
                                 # on the rows the LLM judge decided: is it worth asking?
                                 "llm_routed_accuracy": accuracy(
                                     [conv(r["label"]) for r in routed],
                                     [conv(r["verdict"]) for r in routed])}
        if scheme == "three_class":
            block["three_class"] = agreement(true, pred, CLASSES)
        block["binary"] = agreement([to_binary(t) for t in true], [to_binary(p) for p in pred],
                                    BINARY)
        out[name] = block
    out["n_rows"] = len({r["id"] for r in records if r["configuration"] != FAST_ALL})
    return out


def flat_metrics(summary: dict[str, Any]) -> dict[str, float | int | str]:
    """The headline numbers of `summarize` as flat snake_case keys for `dvc metrics`
    (confusion matrices stay in the nested summary)."""
    out: dict[str, float | int | str] = {"n_rows": summary["n_rows"]}
    for name in (*CONFIGURATIONS, FAST_ALL):
        block = summary.get(name)
        if not block:
            continue
        main = block.get("three_class") or block["binary"]
        values: dict[str, Any] = {
            "n": main["n"], "accuracy": main["accuracy"], "kappa": main["kappa"],
            "coverage": main["coverage"], "binary_accuracy": block["binary"]["accuracy"],
            "binary_kappa": block["binary"]["kappa"],
            "llm_judged_share": block["llm_judged_share"],
            "llm_routed_accuracy": block["llm_routed_accuracy"],
        }
        for cls, pr in main["per_class"].items():
            values[f"{cls}_precision"] = pr["precision"]
            values[f"{cls}_recall"] = pr["recall"]
        out.update({f"{name}_{k}": v for k, v in values.items() if v is not None})
    return out

