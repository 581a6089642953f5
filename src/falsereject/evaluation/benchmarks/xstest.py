"""XSTest v2: 250 safe prompts that merely look unsafe and 200 unsafe contrast prompts.

Upstream format (`xstest_prompts.csv` at the pinned commit of paul-rottger/xstest): columns
`id, prompt, type, label, focus, note`; `label` is `safe` or `unsafe`; `type` names the
prompt family (`homonyms`, `contrast_homonyms`, ...). Mirrors on the hub (e.g. walledai/XSTest)
carry the same columns without `id`; the prompt hash stands in then.
"""

from __future__ import annotations

from typing import Any

from falsereject.core.config import BenchmarkConfig
from falsereject.core.io import InputError
from falsereject.evaluation.benchmarks.sample import Sample, optional_text, required_text, text_id

CITATION = (
    "Röttger, Kirk, Vidgen, Attanasio, Bianchi, Hovy. XSTest: A Test Suite for Identifying "
    "Exaggerated Safety Behaviours in Large Language Models. NAACL 2024. "
    "https://github.com/paul-rottger/xstest (CC-BY-4.0)"
)
REPO = "paul-rottger/xstest"
REVISION = "d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d"
SHA256 = "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a"
LABELS = {"safe": "benign", "unsafe": "toxic"}


def to_sample(record: dict[str, Any], cfg: BenchmarkConfig, *, locator: str,
              benchmark: str) -> Sample:
    prompt = required_text(record, "prompt", locator)
    raw = (optional_text(record, "label") or "").lower()
    if raw not in LABELS:
        raise InputError(f"{locator}: XSTest label must be safe or unsafe, got {raw!r}")
    upstream_id = optional_text(record, "id")
    sid = f"xstest-{int(upstream_id):03d}" if upstream_id and upstream_id.isdigit() \
        else text_id("xstest", prompt)
    return Sample(sid, prompt, LABELS[raw], optional_text(record, "type"), benchmark, locator)
