"""Human review, file-based: export the accepted prompts, read a reviewed file back.

`generate` writes data/review/accepted.{csv,jsonl}: one row per accepted prompt with a summary
of its provenance and empty `review_label` / `review_note` columns. A reviewer fills
`review_label` in a copy (CSV or JSONL; only `id`, `review_label`, `review_note` are read) and
points `split.review_file` at it. Labels:
  over_refusal       the orchestrator was right: a benign prompt that looks harmful (kept)
  harmful            genuinely harmful (removed)
  not_over_refusal   benign but nothing an assistant would refuse, or not a useful case (removed)
  (empty)            not reviewed (kept)
Removed prompts keep their label and note (data/split/removed.jsonl); the metrics report how
often the reviewer agreed with the orchestrator (which accepted every exported prompt).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from falsereject.core.io import (
    InputError,
    read_csv,
    read_jsonl_numbered,
    read_text_strict,
    write_text,
)

LABELS = ("over_refusal", "harmful", "not_over_refusal")
REMOVE = ("harmful", "not_over_refusal")
COLUMNS = ("id", "prompt", "category", "category_text", "seed_id", "seed_prompt",
           "accepted_at_iteration", "pool_refusals", "pool_size", "pool_blocked_terms",
           "discriminator_feedback", "orchestrator_rationale", "review_label", "review_note")


def export_row(rec: dict[str, Any]) -> dict[str, Any]:
    """An accepted record as a review row: the prompt, its provenance in brief, empty labels."""
    prov = rec.get("provenance") or {}
    steps = prov.get("iterations") or []
    last = steps[-1] if steps else {}
    pool = prov.get("pool") or []
    return {
        "id": rec["id"], "prompt": rec["prompt"], "category": rec["category"],
        "category_text": rec["category_text"], "seed_id": rec["seed_id"],
        "seed_prompt": prov.get("seed_prompt", ""),
        "accepted_at_iteration": prov.get("accepted_at_iteration"),
        "pool_refusals": prov.get("pool_refusals"), "pool_size": len(pool),
        "pool_blocked_terms": "; ".join(a["matched_term"] for a in pool if a.get("matched_term")),
        "discriminator_feedback": ((last.get("discriminator") or {}).get("feedback") or ""),
        "orchestrator_rationale": ((prov.get("orchestrator") or {}).get("rationale") or ""),
        "review_label": "", "review_note": "",
    }


def write_review_export(records: list[dict[str, Any]], csv_path: str | Path,
                        jsonl_path: str | Path) -> list[dict[str, Any]]:
    rows = [export_row(r) for r in sorted(records, key=lambda r: r["id"])]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    write_text(csv_path, buf.getvalue())
    write_text(jsonl_path, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                   for r in rows))
    return rows


def read_review(path: str | Path) -> dict[str, dict[str, str]]:
    """id -> {label, note} for every labelled row of a reviewed CSV/JSONL (blank labels are
    'not reviewed' and skipped); a bad label or a repeated id names the file and line."""
    path = Path(path)
    if path.suffix == ".jsonl":
        rows = [(n, {k: ("" if v is None else str(v)) for k, v in r.items()})
                for n, r in read_jsonl_numbered(path)]
    elif path.suffix == ".csv":
        rows = read_csv(path) if read_text_strict(path).strip() else []
    else:
        raise InputError(f"{path}: a review file is .csv or .jsonl")
    out: dict[str, dict[str, str]] = {}
    for n, row in rows:
        if "id" not in row or "review_label" not in row:
            raise InputError(f"{path}:{n}: a review row needs `id` and `review_label` columns")
        label = (row.get("review_label") or "").strip().lower()
        if not label:
            continue
        if label not in LABELS:
            raise InputError(f"{path}:{n}: review_label {label!r} is not one of "
                             f"{', '.join(LABELS)} (or empty)")
        rid = row["id"].strip()
        if rid in out:
            raise InputError(f"{path}:{n}: id {rid!r} is reviewed twice")
        out[rid] = {"label": label, "note": (row.get("review_note") or "").strip(), "line": n}
    return out


def apply_review(records: list[dict[str, Any]], reviews: dict[str, dict[str, str]]
                 ) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(kept, removed, metrics). Removed rows carry `removed_reason` and the review."""
    kept, removed = [], []
    ids = {r["id"] for r in records}
    for r in records:
        rev = reviews.get(r["id"])
        if rev is None:
            kept.append(r)
            continue
        review = {"label": rev["label"], "note": rev["note"]}
        if rev["label"] in REMOVE:
            note = f": {rev['note']}" if rev["note"] else ""
            removed.append({**r, "removed_reason": f"review:{rev['label']}{note}",
                            "review": review})
        else:
            kept.append({**r, "review": review})
    reviewed = [rid for rid in reviews if rid in ids]
    agree = sum(reviews[rid]["label"] == "over_refusal" for rid in reviewed)
    metrics = {
        "review_rows_count": len(reviews),
        "reviewed_count": len(reviewed),
        "review_unknown_ids_count": len(reviews) - len(reviewed),
        "review_removed_count": len(removed),
        "review_removed_harmful_count": sum(r["review"]["label"] == "harmful" for r in removed),
        "review_removed_not_over_refusal_count": sum(
            r["review"]["label"] == "not_over_refusal" for r in removed),
        # the orchestrator accepted every exported prompt: agreement = share labelled over_refusal
        "review_orchestrator_agreement": round(agree / len(reviewed), 6) if reviewed else None,
    }
    return kept, removed, metrics
