"""Prices: models LiteLLM cannot price get a zero entry once (its price-map search is a quarter
of its per-call CPU otherwise); their cost is reported as unknown, except `local/` models."""

from __future__ import annotations

from falsereject.llm.lite import lite
from falsereject.llm.local_provider import LOCAL_PREFIX

_CHECKED: set[str] = set()
UNPRICED: set[str] = set()  # models LiteLLM has no price for: their cost is reported as None


def prepare_pricing(model: str) -> None:
    """Give LiteLLM a zero price entry for models it cannot price (vLLM-served, local, test).

    For an unknown model LiteLLM searches its whole price map on every response, which is
    a quarter of its per-call CPU; the ledger still reports their cost as unknown (None),
    except for `local/` models, which really cost nothing.
    """
    if model in _CHECKED:
        return
    _CHECKED.add(model)
    litellm = lite()
    try:
        litellm.get_model_info(model)
        return
    except Exception:  # noqa: BLE001 - LiteLLM raises several kinds for "not mapped"
        pass
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    litellm.model_cost[model] = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                                 "litellm_provider": provider, "mode": "chat"}
    if not model.startswith(LOCAL_PREFIX):
        UNPRICED.add(model)
