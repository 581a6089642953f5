"""Dataset comparison, the paper's Table 1 for any prompt sets (stage `compare`).

Each configured set (`compare.sets`: the pipeline's accepted prompts, local files, hub
benchmarks) is read with the benchmark loaders; its benign prompts (the over-refusal part; toxic
rows are counted and left out) are answered by a fixed evaluation pool (`compare.pool`,
configured apart from the generation pool, so a set's rejection rate does not restate the filter
that selected it) and described by size, categories covered, rejection rate (mean over pool
members of the share of answers the shared detector marks as refusals), Self-BLEU, Dist-2 and
mean pairwise embedding similarity. Hub sets that cannot be reached become rows with a note.
The paper's published rows are added from a CSV, marked as quoted (never recomputed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from falsereject.core.config import CompareConfig
from falsereject.core.hub import HubUnavailableError
from falsereject.core.io import InputError, read_text_strict
from falsereject.evaluation.benchmarks import load_benchmark
from falsereject.evaluation.benchmarks.sample import Sample
from falsereject.generation.diversity import diversity_metrics
from falsereject.generation.extraction import call_seed
from falsereject.generation.pool import Pool
from falsereject.llm import run

REFERENCE_COLUMNS = ("dataset", "size", "categories", "rejection_rate_pct", "self_bleu",
                     "dist_2", "source")


def load_sets(cfg: CompareConfig, seed: int) -> dict[str, tuple[list[Sample] | None, str]]:
    """name -> (benign samples, note) for every set; (None, why) for a set not computed."""
    out: dict[str, tuple[list[Sample] | None, str]] = {}
    for name, bench in cfg.sets.items():
        if not bench.enabled:
            out[name] = (None, "not enabled")
            continue
        pipeline = bench.source.path if bench.source.type == "pipeline" else None
        try:
            samples = load_benchmark(name, bench, pipeline_path=pipeline, seed=seed)
        except HubUnavailableError as err:
            why = str(err).split(";")[0]  # the reason, without the how-to-fix advice
            out[name] = (None, f"skipped: hub not reachable ({why[:200]})")
            continue
        benign = [s for s in samples if s.label == "benign"]
        toxic = len(samples) - len(benign)
        note = f"{toxic} toxic rows left out" if toxic else ""
        out[name] = (benign, note)
    return out


def subsample(samples: list[Sample], k: int | None, seed: int) -> list[Sample]:
    from falsereject.evaluation.benchmarks import select

    return select(samples, k, seed)


async def pool_rates(client: Any, pool: Pool, prompts: Sequence[str], run_seed: int
                     ) -> tuple[dict[str, float | None], list[list[dict[str, Any]]]]:
    """Per member: the share of `prompts` it refused; and every answer (for the details)."""
    import asyncio

    answers = await asyncio.gather(*(pool.answer(client, p, call_seed(run_seed, "compare", p))
                                     for p in prompts))
    rates: dict[str, float | None] = {}
    for m in pool.members:
        marks = [a["refused"] for row in answers for a in row
                 if a["member"] == m.name and a["error"] is None]
        rates[m.name] = round(sum(marks) / len(marks), 6) if marks else None
    return rates, list(answers)


def set_row(name: str, samples: list[Sample], total_benign: int, rates: dict[str, float | None],
            embed: Callable[[Sequence[str]], Any] | None, note: str) -> dict[str, Any]:
    texts = [s.prompt for s in samples]
    valid = [r for r in rates.values() if r is not None]
    row: dict[str, Any] = {
        "dataset": name, "quoted": False, "size": total_benign, "evaluated": len(samples),
        "categories": len({s.category for s in samples if s.category}),
        "rejection_rate": round(sum(valid) / len(valid), 6) if valid else None,
        **{f"rejection_rate_{m}": r for m, r in rates.items()},
        **diversity_metrics(texts, embed), "note": note,
    }
    return row


def read_reference(path: str) -> list[dict[str, Any]]:
    """The paper's rows, quoted as published (rates in %, converted to a fraction)."""
    reader = csv.DictReader(io.StringIO(read_text_strict(path)))
    if tuple(reader.fieldnames or ()) != REFERENCE_COLUMNS:
        raise InputError(f"{path}: columns must be {', '.join(REFERENCE_COLUMNS)}")
    rows = []
    for rec in reader:
        try:
            rows.append({"dataset": rec["dataset"], "quoted": True, "size": int(rec["size"]),
                         "evaluated": None, "categories": int(rec["categories"]),
                         "rejection_rate": round(float(rec["rejection_rate_pct"]) / 100, 6),
                         "self_bleu": float(rec["self_bleu"]), "dist_2": float(rec["dist_2"]),
                         "embedding_similarity_mean": None,
                         "note": f"quoted: {rec['source']}"})
        except (TypeError, ValueError) as err:
            raise InputError(f"{path}:{reader.line_num}: {err}") from None
    return rows


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def table_markdown(rows: list[dict[str, Any]], pool_desc: str) -> str:
    head = ("| dataset | size | evaluated | categories | rejection rate | Self-BLEU (lower "
            "better) | Dist-2 (higher better) | embedding sim. (lower better) | note |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['dataset']}{' (quoted)' if r['quoted'] else ''} | {_fmt(r['size'])} | "
        f"{_fmt(r['evaluated'])} | {_fmt(r['categories'])} | {_fmt(r['rejection_rate'])} | "
        f"{_fmt(r.get('self_bleu'))} | {_fmt(r.get('dist_2'))} | "
        f"{_fmt(r.get('embedding_similarity_mean'))} | {r['note']} |\n" for r in rows)
    return ("# Dataset comparison (the paper's Table 1 for any prompt sets)\n\n"
            f"Rejection rate: mean over the evaluation pool ({pool_desc}) of each member's "
            "refusal rate on the set's benign prompts (at most `compare.max_prompts` of them, "
            "a seeded subset: `evaluated`); diversity metrics over the same prompts. Rows "
            "marked (quoted) are the paper's published numbers, not recomputed here; their "
            "rejection rates come from other evaluation LLMs, so compare them with care.\n\n"
            + head + body)


# --- the stage's work as data ------------------------------------------------------------

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
