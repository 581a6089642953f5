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
from pathlib import Path
from typing import Any

from falsereject.core import stage
from falsereject.core.config import CompareConfig
from falsereject.core.io import InputError, write_json, write_text
from falsereject.evaluation.compare import (
    load_sets,
    pool_rates,
    read_reference,
    set_row,
    subsample,
    table_markdown,
)
from falsereject.generation.diversity import cached_embedding_fn, require_embedder
from falsereject.generation.pool import Pool
from falsereject.llm import LLMClient, require_credentials, run
from falsereject.llm.cache import embedding_cache
from falsereject.llm.metering import MeteredClient

PIPELINE_PATHS = ("data/generate/accepted.jsonl",)
LOCAL_DIR = "resources/benchmarks"


def check_paths(cfg: CompareConfig) -> None:
    """Every local set is a dep of the stage: the pipeline's accepted prompts, or a file under
    resources/benchmarks/ (dvc.yaml lists that folder)."""
    for name, bench in cfg.sets.items():
        path = Path(bench.source.path)
        if bench.source.type == "pipeline" and str(path) not in PIPELINE_PATHS:
            raise InputError(f"compare.sets.{name}.source.path: {path} is not one of "
                             f"{', '.join(PIPELINE_PATHS)}")
        if bench.source.type == "file" and Path(LOCAL_DIR) not in path.parents:
            raise InputError(f"compare.sets.{name}.source.path: {path} must be under "
                             f"{LOCAL_DIR}/ (a dep of stage compare)")


def run_compare(client: Any, cfg: CompareConfig, run_seed: int,
                embed: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(table rows, per-prompt answers): computed sets, then the quoted reference rows."""
    pool = Pool(cfg.pool, cfg.moderation_terms)
    rows, details = [], []
    for name, (samples, note) in load_sets(cfg, run_seed).items():
        if samples is None:
            rows.append({"dataset": name, "quoted": False, "size": None, "evaluated": None,
                         "categories": None, "rejection_rate": None, "self_bleu": None,
                         "dist_2": None, "embedding_similarity_mean": None, "note": note})
            continue
        chosen = subsample(samples, cfg.max_prompts, run_seed)
        rates, answers = run(pool_rates(client, pool, [s.prompt for s in chosen], run_seed))
        rows.append(set_row(name, chosen, len(samples), rates, embed, note))
        details += [{"set": name, "id": s.id, "prompt": s.prompt,
                     "answers": [{k: a[k] for k in ("member", "answer", "refused", "error")}
                                 for a in ans]}
                    for s, ans in zip(chosen, answers, strict=True)]
    return rows + read_reference(cfg.reference), details


def flat_metrics(rows: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = {}
    for r in rows:
        if r["quoted"] or r["evaluated"] is None:
            continue
        for k in ("size", "evaluated", "categories", "rejection_rate", "self_bleu", "dist_2",
                  "embedding_similarity_mean"):
            m[f"{r['dataset']}_{k}"] = r[k]
    m["llm_requests_count"] = usage["requests"]
    m["llm_tokens_count"] = usage["tokens"]
    return m


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
