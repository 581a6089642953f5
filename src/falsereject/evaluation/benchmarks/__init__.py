"""Benchmarks: one module per benchmark, each a pure record -> `Sample` mapping plus its
citation and pinned upstream revision. `load_benchmark` reads the configured source, maps every
record, checks ids and subsamples deterministically.

    from falsereject.evaluation.benchmarks import load_benchmark
    samples = load_benchmark("xstest", params.eval.benchmarks["xstest"])
"""

from __future__ import annotations

from types import ModuleType

from falsereject.core.config import BenchmarkConfig
from falsereject.core.io import InputError
from falsereject.core.seeding import seeded_order
from falsereject.evaluation.benchmarks import (
    falsereject_test,
    harmful_control,
    local_file,
    orbench,
    own_test,
    xstest,
)
from falsereject.evaluation.benchmarks.sample import Sample
from falsereject.evaluation.benchmarks.sources import read_records, source_description

KINDS: dict[str, ModuleType] = {
    "own_test": own_test,
    "falsereject": falsereject_test,
    "xstest": xstest,
    "orbench": orbench,
    "harmful_control": harmful_control,
    "local_file": local_file,
}

__all__ = ["KINDS", "Sample", "load_benchmark", "select", "source_description"]


def select(samples: list[Sample], k: int | None, seed: int) -> list[Sample]:
    """A deterministic subset of `k` samples (all if k is None), sorted by id.

    Ranking by a seeded hash of the id keeps a sample's membership stable when others are
    added or removed, so a re-run after a small data change reuses most cached answers.
    """
    ranked = seeded_order(samples, seed, key=lambda s: s.id)
    chosen = ranked if k is None else ranked[:k]
    return sorted(chosen, key=lambda s: s.id)


def load_benchmark(name: str, cfg: BenchmarkConfig, *, pipeline_path: str | None = None,
                   max_samples: int | None = None, seed: int = 0) -> list[Sample]:
    """All samples of benchmark `name` (its config `cfg`), at most `max_samples` of them.

    An empty source is an error, except the pipeline's own test split: tiny runs may
    legitimately accept no test prompt."""
    module = KINDS[cfg.kind]
    samples = []
    for locator, record in read_records(cfg.source, pipeline_path):
        samples.append(module.to_sample(record, cfg, locator=locator, benchmark=name))
    seen: dict[str, str] = {}
    for s in samples:
        if s.id in seen:
            raise InputError(f"{s.locator}: duplicate sample id {s.id!r} (first at {seen[s.id]})")
        seen[s.id] = s.locator
    if not samples and cfg.source.type != "pipeline":
        raise InputError(f"benchmark {name}: {source_description(cfg.source, pipeline_path)} "
                         "holds no rows")
    return select(samples, cfg.max_samples or max_samples, seed)
