"""Stage `compare`: the paper's Table 1 for any prompt sets, by a fixed evaluation pool.

For every set of `compare.sets` (the pipeline's accepted prompts, local files under
resources/benchmarks/, hub benchmarks when reachable; a hub set that cannot be reached is a row
with a note): size, categories covered, rejection rate by `compare.pool` (configured apart from
the generation pool), Self-BLEU, Dist-2, mean embedding similarity. The paper's published rows
(`compare.reference`) are added, marked as quoted. Params: `compare`, `run`.

    python stages/compare.py --table reports/compare/table.md --rows reports/compare/rows.json \
        --reports-dir reports/compare
"""

from __future__ import annotations

import time

from falsereject.core import stage
from falsereject.core.io import write_json, write_text
from falsereject.evaluation.compare import (
    check_paths,
    flat_metrics,
    run_compare,
    table_markdown,
)
from falsereject.generation.diversity import cached_embedding_fn, require_embedder
from falsereject.llm import LLMClient, require_credentials
from falsereject.llm.cache import embedding_cache
from falsereject.llm.metering import MeteredClient


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--table", "--rows", "--reports-dir"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    cfg = p.compare
    check_paths(cfg)
    require_credentials([m.llm for m in cfg.pool if m.llm is not None])
    require_embedder()
    embed = cached_embedding_fn(embedding_cache())  # the model loads only on a cache miss
    start = time.perf_counter()
    client = LLMClient("compare")
    metered = MeteredClient(client)
    rows, details = run_compare(metered, cfg, p.run.seed, embed)
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    pool_desc = ", ".join(f"{m.name} ({m.llm.model if m.llm else 'lexical'})" for m in cfg.pool)
    write_text(args.table, table_markdown(rows, pool_desc))
    write_json(args.rows, {"rows": rows, "answers": details})
    write_json(f"{args.reports_dir}/metrics.json", flat_metrics(rows, metered.summary()))
    client.write_ledger(args.reports_dir)
    write_json(f"{args.reports_dir}/timing.json",
               {"wall_s": round(time.perf_counter() - start, 2)})
    print(f"compare: {sum(not r['quoted'] for r in rows)} sets, "
          f"{sum(r['quoted'] for r in rows)} quoted rows -> {args.table}")


if __name__ == "__main__":
    stage.entrypoint(main)
