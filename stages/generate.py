"""Stage `generate`: the adversarial multi-agent loop, from seed subgraphs to accepted prompts.

Reads the `ok` subgraph rows of `extract`; for each, `generate.n_candidates` candidates go
through Generator <-> Discriminator (up to `generate.max_iterations` rounds), the refusal pool
(`llm.refusal_pool`, kept when >= `generate.min_pool_refusals` members refuse) and the
Orchestrator, every gate's feedback going back to the Generator; accepted prompts are
deduplicated and exported for human review (data/review/); stage `split` makes train/test.
Every record carries its provenance; rejected candidates are kept with the gate that rejected
them. Params: `generate`, `llm`, `run`.

    python stages/generate.py --subgraphs data/extract/subgraphs.jsonl \
        --generator-prompt prompts/generator_v2.yaml \
        --discriminator-prompt prompts/discriminator_v1.yaml \
        --orchestrator-prompt prompts/orchestrator_v1.yaml \
        --accepted data/generate/accepted.jsonl --rejected data/generate/rejected.jsonl \
        --review-dir data/review \
        --reports-dir reports/generate
"""

from __future__ import annotations

import time
from typing import Any

from falsereject.core import progress, stage
from falsereject.core.config import GenerateConfig, Params
from falsereject.core.io import read_json, write_json, write_jsonl
from falsereject.core.records import Subgraph, read_records
from falsereject.core.templates import load_template
from falsereject.generation.agents import Agents
from falsereject.generation.curation import (
    accepted_rows,
    apply_dedup,
    rejected_rows,
    upstream_usage,
    yield_metrics,
)
from falsereject.generation.loop import run_candidate
from falsereject.generation.pool import Pool
from falsereject.generation.review import write_review_export
from falsereject.llm import LLMClient, require_credentials, run
from falsereject.llm.metering import MeteredClient


async def generate_all(client: Any, agents: Agents, pool: Pool, rows: list[dict[str, Any]],
                       cfg: GenerateConfig, run_seed: int) -> list[dict[str, Any]]:
    """Every candidate of every row, concurrently (the embedded model batches them)."""
    return await progress.gather(
        (run_candidate(client, agents, pool, row, j, cfg, run_seed)
         for row in rows for j in range(cfg.n_candidates)), "generate", "candidates")


def build_agents(p: Params, args) -> Agents:
    return Agents(
        generator=p.llm.roles.generator, discriminator=p.llm.roles.discriminator,
        orchestrator=p.llm.roles.orchestrator,
        generator_tmpl=load_template(args.generator_prompt,
                                     ("system", "user", "revise.discriminator",
                                      "revise.pool", "revise.orchestrator")),
        discriminator_tmpl=load_template(args.discriminator_prompt, ("system", "user")),
        orchestrator_tmpl=load_template(args.orchestrator_prompt, ("system", "user")),
        max_prompt_chars=p.generate.max_prompt_chars, retries=p.generate.retries,
    )


def load_embed():
    """Sentence embeddings for dedup and the diversity metric, cached next to the LLM cache;
    the model itself loads only when a text is not in the cache."""
    from falsereject.generation.diversity import cached_embedding_fn, require_embedder
    from falsereject.llm.cache import embedding_cache

    require_embedder()
    return cached_embedding_fn(embedding_cache())


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--subgraphs", "--generator-prompt", "--discriminator-prompt",
                 "--orchestrator-prompt", "--accepted", "--rejected", "--review-dir",
                 "--reports-dir"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--extract-metrics", default=None,
                    help="extract's metrics.json: its LLM usage is reported per accepted prompt")
    args = ap.parse_args()
    p = stage.params(args.params)
    cfg = p.generate
    all_rows = read_records(args.subgraphs, Subgraph)
    rows = [r for r in all_rows if r["status"] == "ok"]
    agents = build_agents(p, args)
    pool = Pool(p.llm.refusal_pool, p.llm.moderation_terms)
    require_credentials([agents.generator, agents.discriminator, agents.orchestrator]
                        + [m.llm for m in p.llm.refusal_pool if m.llm is not None])
    embed = load_embed()

    start = time.perf_counter()
    client = LLMClient("generate")
    metered = MeteredClient(client)
    candidates = run(generate_all(metered, agents, pool, rows, cfg, p.run.seed))
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    candidates = apply_dedup(candidates, cfg, embed if cfg.dedup.method == "embedding" else None)
    accepted = accepted_rows(candidates)
    rejected = rejected_rows(candidates)
    metrics = yield_metrics(candidates, cfg, [m.name for m in p.llm.refusal_pool], embed,
                            metered.summary(), seeds_in=len(all_rows), seeds_used=len(rows))
    if args.extract_metrics:
        metrics.update(upstream_usage("extract", read_json(args.extract_metrics),
                                      metrics["accepted_count"]))
    wall_s = round(time.perf_counter() - start, 2)  # timing.json: never in tracked metrics

    write_jsonl(args.accepted, accepted)
    write_jsonl(args.rejected, rejected)
    write_review_export(accepted, f"{args.review_dir}/accepted.csv",
                        f"{args.review_dir}/accepted.jsonl")
    client.write_ledger(args.reports_dir)
    write_json(f"{args.reports_dir}/metrics.json", metrics)
    write_json(f"{args.reports_dir}/timing.json", {"wall_s": wall_s, "rows": len(candidates)})
    print(f"generate: {metrics['candidates_count']} candidates -> "
          f"{metrics['discriminator_accepted_count']} discriminator-accepted -> "
          f"{metrics['pool_refused_count']} pool-refused -> "
          f"{metrics['orchestrator_accepted_count']} orchestrator-accepted -> "
          f"{metrics['accepted_count']} after dedup, "
          f"{wall_s}s")


if __name__ == "__main__":
    stage.entrypoint(main)
