"""Stage `extract`: an entity graph per toxic seed, merged into one graph.

Reads the seeds (`{id, prompt, category, category_text, source}`) and, per seed, asks the
extractor role (params `llm`) for `extract.k` entity/relation lists, retrying unusable output
`extract.retries` times; an LLM vote picks the most representative list. Writes one subgraph row
per seed sorted by seed id (failed seeds kept with `status: failed` and the reason), the merged
graph as networkx node-link JSON, metrics, a picture of the graph and the LLM ledger.
Params: `extract`, `llm`, `run`.

    python stages/extract.py --seeds data/seeds/seeds.jsonl \
        --prompt prompts/extract_v1.yaml --vote-prompt prompts/vote_v1.yaml \
        --graph data/extract/graph.json --subgraphs data/extract/subgraphs.jsonl \
        --reports-dir reports/extract
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from falsereject.core import progress, stage
from falsereject.core.config import ExtractConfig, RoleModel
from falsereject.core.io import (
    atomic_path,
    write_json,
    write_jsonl,
)
from falsereject.core.records import Seed, read_records
from falsereject.core.templates import PromptTemplate, load_template
from falsereject.generation.extraction import extract_seed
from falsereject.generation.graph import build_graph, draw, graph_stats, to_node_link
from falsereject.generation.seeds import select_seeds
from falsereject.llm import LLMClient, require_credentials, run
from falsereject.llm.metering import MeteredClient


async def extract_all(client: Any, role: RoleModel, seeds: list[dict[str, Any]],
                      cfg: ExtractConfig, tmpl: PromptTemplate, vote_tmpl: PromptTemplate,
                      run_seed: int) -> list[dict[str, Any]]:
    """Subgraph rows for every seed, concurrently (the embedded model batches them)."""
    rows = await progress.gather(
        (extract_seed(client, role, tmpl, vote_tmpl, s, cfg, run_seed) for s in seeds),
        "extract", "seeds")
    return sorted(rows, key=lambda r: r["seed_id"])


def summarize(rows: list[dict[str, Any]], graph_metrics: dict[str, Any], seeds_input: int
              ) -> dict[str, Any]:
    samples = [c for r in rows for c in r["candidates"]]
    votes = Counter(r["vote"]["method"] for r in rows)
    failed = [r for r in rows if r["status"] != "ok"]
    return {
        "seeds_input_count": seeds_input,
        "seeds_count": len(rows),
        "seeds_ok_count": len(rows) - len(failed),
        "seeds_failed_count": len(failed),
        "samples_count": len(samples),
        "samples_failed_count": sum(c["status"] != "ok" for c in samples),
        "samples_repaired_count": sum(bool(c["repaired"]) for c in samples),
        "sample_retries_count": sum(len(c["retry_reasons"]) - (c["status"] != "ok")
                                    for c in samples),
        "entities_dropped_count": sum(c["dropped_entities"] for c in samples),
        "relations_dropped_count": sum(c["dropped_relations"] for c in samples),
        "vote_llm_count": votes.get("llm", 0),
        "vote_consensus_fallback_count": votes.get("consensus", 0),
        "vote_single_count": votes.get("single", 0),
        "categories_covered_count": len({r["category"] for r in rows if r["status"] == "ok"}),
        **graph_metrics,
    }


def main() -> None:
    ap = stage.parser(__doc__)
    for flag in ("--seeds", "--prompt", "--vote-prompt", "--graph", "--subgraphs",
                 "--reports-dir"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    all_seeds = read_records(args.seeds, Seed, sort_by="id", allow_empty=False)
    seeds = select_seeds(all_seeds, p.extract.max_seeds)
    tmpl = load_template(args.prompt, ("system", "user"))
    vote_tmpl = load_template(args.vote_prompt, ("system", "user"))
    role = p.llm.roles.extractor
    require_credentials([role])

    start = time.perf_counter()
    client = LLMClient("extract")
    metered = MeteredClient(client)
    rows = run(extract_all(metered, role, seeds, p.extract, tmpl, vote_tmpl, p.run.seed))
    client.ledger.check(p.run.max_failed_share)  # a dead endpoint writes (and locks) nothing
    graph = build_graph(rows)
    metrics = summarize(rows, graph_stats(graph), seeds_input=len(all_seeds))
    usage = metered.summary()
    metrics.update({"llm_requests_count": usage["requests"], "llm_tokens_count": usage["tokens"],
                    "llm_cost_usd": usage["cost_usd"]})
    wall_s = round(time.perf_counter() - start, 2)  # timing.json: never in tracked metrics

    write_jsonl(args.subgraphs, rows)
    write_json(args.graph, to_node_link(graph))
    reports = Path(args.reports_dir)
    with atomic_path(reports / "graph.png") as tmp:
        draw(graph, tmp, seed=p.run.seed)
    client.write_ledger(reports)
    write_json(reports / "metrics.json", metrics)
    write_json(reports / "timing.json", {"wall_s": wall_s, "rows": len(rows)})
    print(f"extract: {metrics['seeds_ok_count']}/{metrics['seeds_count']} seeds ok, "
          f"{metrics['nodes_count']} nodes, {metrics['edges_count']} edges, "
          f"{metrics['connected_components_count']} components, "
          f"{wall_s}s -> {args.subgraphs}")


if __name__ == "__main__":
    stage.entrypoint(main)
