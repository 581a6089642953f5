"""FalseReject's human-annotated public test set: 1,187 seemingly toxic but benign prompts.

Upstream format (test split of `AmazonScience/FalseReject`): `prompt` (str), `category` (int,
SORRY-Bench id), `category_text` (str). Every prompt is benign.
"""

from __future__ import annotations

from typing import Any

from falsereject.core.config import BenchmarkConfig
from falsereject.evaluation.benchmarks.sample import Sample, optional_text, required_text, text_id

CITATION = (
    "Zhang, Xu, Wu, Reddy. FalseReject: A Resource for Improving Contextual Safety and "
    "Mitigating Over-Refusals in LLMs via Structured Reasoning. COLM 2025. arXiv:2505.08054. "
    "https://huggingface.co/datasets/AmazonScience/FalseReject (CC-BY-NC-4.0)"
)
HF_ID = "AmazonScience/FalseReject"
# No commit sha could be verified offline; conf pins `main` and says so. Set the sha shown on
# the dataset page in conf/config.yaml (eval.benchmarks.falsereject.source.revision).
REVISION = None


def to_sample(record: dict[str, Any], cfg: BenchmarkConfig, *, locator: str,
              benchmark: str) -> Sample:
    prompt = required_text(record, "prompt", locator)
    category = optional_text(record, "category_text") or optional_text(record, "category")
    return Sample(text_id("falsereject", prompt), prompt, "benign", category, benchmark,
                  locator)
