"""Usage totals over every chat a stage makes, cached or not.

The client's ledger counts what was paid for in this run (a cached re-run costs nothing);
metrics such as "LLM calls per accepted prompt" describe the dataset and must not change when
the answers come from the cache, so they are counted here from the results themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any


class MeteredClient:
    """Wraps an object with the LLMClient `achat` signature and counts every result."""

    def __init__(self, client: Any):
        self.client = client
        self.totals: Counter = Counter()
        self.by_model: dict[str, Counter] = {}
        self.cost_known = True

    async def achat(self, role: Any, messages: Sequence[dict], **kw: Any) -> Any:
        res = await self.client.achat(role, messages, **kw)
        for bucket in (self.totals, self.by_model.setdefault(role.model, Counter())):
            bucket["requests"] += 1
            bucket["prompt_tokens"] += int(res.prompt_tokens or 0)
            bucket["completion_tokens"] += int(res.completion_tokens or 0)
            bucket["cost_usd_micro"] += round((res.cost_usd or 0.0) * 1e6)
        if res.cost_usd is None:
            self.cost_known = False
        return res

    def summary(self) -> dict[str, Any]:
        t = self.totals
        return {
            "requests": t["requests"],
            "prompt_tokens": t["prompt_tokens"],
            "completion_tokens": t["completion_tokens"],
            "tokens": t["prompt_tokens"] + t["completion_tokens"],
            "cost_usd": t["cost_usd_micro"] / 1e6 if self.cost_known else None,
        }
