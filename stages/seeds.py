"""Stage `seeds`: normalized toxic seed prompts.

Reads the configured source (params `seeds`: the team's file, a local JSONL/CSV with a column
mapping, or a pinned HF dataset) and writes `{id, prompt, category, category_text, source}`
records sorted by id, plus a small report. Bad input stops the stage before anything is written.

    python stages/seeds.py --out data/seeds/seeds.jsonl --report reports/seeds/summary.json
"""

from __future__ import annotations

from collections import Counter

from falsereject.core import stage
from falsereject.core.io import write_json, write_jsonl
from falsereject.core.taxonomy import CATEGORIES
from falsereject.generation.seeds import load_seeds


def summarize(records: list[dict]) -> dict:
    per_cat = Counter(r["category"] for r in records)
    return {
        "seeds": len(records),
        "categories_covered": len(per_cat),
        "categories_total": len(CATEGORIES),
        "per_category": {str(c): per_cat[c] for c in sorted(per_cat)},
    }


def main() -> None:
    ap = stage.parser(__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--report", required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    records = load_seeds(p.seeds)
    write_jsonl(args.out, records)
    write_json(args.report, summarize(records))
    print(f"seeds: {len(records)} records -> {args.out}")


if __name__ == "__main__":
    stage.entrypoint(main)
