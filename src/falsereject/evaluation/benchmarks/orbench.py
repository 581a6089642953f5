"""OR-Bench: over-refusal prompts (Hard-1K, benign but often refused) and a toxic control.

Upstream format (`bench-llm/or-bench`, configs `or-bench-hard-1k`, `or-bench-toxic`,
`or-bench-80k`; split `train`; one CSV each): columns `prompt, category`. The config's `label`
says which side a subset is on; a subset named toxic cannot be labelled benign.
"""

from __future__ import annotations

from typing import Any

from falsereject.core.config import BenchmarkConfig
from falsereject.core.io import InputError
from falsereject.evaluation.benchmarks.sample import Sample, optional_text, required_text, text_id

CITATION = (
    "Cui, Chiang, Stoica, Hsieh. OR-Bench: An Over-Refusal Benchmark for Large Language "
    "Models. ICML 2025. https://huggingface.co/datasets/bench-llm/or-bench (CC-BY-4.0)"
)
HF_ID = "bench-llm/or-bench"
REVISION = "e36d8b80e81837c8a8f264bbb2a49f1b32c7e272"


def to_sample(record: dict[str, Any], cfg: BenchmarkConfig, *, locator: str,
              benchmark: str) -> Sample:
    subset = cfg.source.subset or ""
    if "toxic" in subset and cfg.label != "toxic":
        raise InputError(f"benchmark {benchmark}: subset {subset} holds toxic prompts; "
                         "set label: toxic")
    prompt = required_text(record, "prompt", locator)
    prefix = f"orbench-{subset.removeprefix('or-bench-')}" if subset else "orbench"
    return Sample(text_id(prefix, prompt), prompt, cfg.label or "benign",
                  optional_text(record, "category"), benchmark, locator)
