"""Stage `split`: human review applied to the accepted prompts, then the train/test split.

Reads `generate`'s accepted prompts and the reviewed file `split.review_file` (a copy of
data/review/accepted.csv or .jsonl with `review_label` filled; empty by default): prompts
labelled `harmful` or `not_over_refusal` leave the dataset (data/split/removed.jsonl keeps them
with the reason). The rest are split train/test grouped by seed (no seed has prompts on both
sides), stratified by category, seeded by `run.seed`. Editing the review file reruns only this
stage and what depends on it. Params: `split`, `run`.

    python stages/split.py --accepted data/generate/accepted.jsonl \
        --train data/generate/train.jsonl --test data/generate/test.jsonl \
        --removed data/split/removed.jsonl --reports-dir reports/split
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from falsereject.core import stage
from falsereject.core.io import write_json, write_jsonl
from falsereject.core.records import AcceptedPrompt, read_records
from falsereject.generation.review import apply_review, read_review
from falsereject.generation.split import grouped_split


def split_metrics(kept: list[dict], train: list[dict], test: list[dict],
                  review: dict[str, Any]) -> dict[str, Any]:
    train_seeds = {r["seed_id"] for r in train}
    test_seeds = {r["seed_id"] for r in test}
    return {**review, "accepted_in_count": len(kept) + review["review_removed_count"],
            "kept_count": len(kept), "train_count": len(train), "test_count": len(test),
            "train_seeds_count": len(train_seeds), "test_seeds_count": len(test_seeds),
            "seeds_on_both_sides_count": len(train_seeds & test_seeds),
            "train_categories_count": len(Counter(r["category"] for r in train)),
            "test_categories_count": len(Counter(r["category"] for r in test))}


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--accepted", "--train", "--test", "--removed", "--reports-dir"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    accepted = read_records(args.accepted, AcceptedPrompt)
    reviews = read_review(p.split.review_file)
    kept, removed, review = apply_review(accepted, reviews)
    train, test = grouped_split(kept, p.split.test_fraction, p.run.seed)
    train = [{**r, "split": "train"} for r in train]
    test = [{**r, "split": "test"} for r in test]
    metrics = split_metrics(kept, train, test, review)
    write_jsonl(args.train, train)
    write_jsonl(args.test, test)
    write_jsonl(args.removed, removed)
    write_json(f"{args.reports_dir}/metrics.json", metrics)
    print(f"split: {len(accepted)} accepted, {len(removed)} removed by review -> "
          f"{len(train)} train / {len(test)} test ({metrics['train_seeds_count']} / "
          f"{metrics['test_seeds_count']} seeds)")


if __name__ == "__main__":
    stage.entrypoint(main)
