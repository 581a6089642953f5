"""Several deployments behind one role: LiteLLM's Router, driven by the client's retry loop.

A role with `deployments` (conf/llm/, see `RoleModel`) gets one `litellm.Router` per process.
The Router picks a deployment for each attempt (routing strategy, rpm/tpm, weights) and takes
failing ones out for `routing.cooldown_s`; it retries nothing itself (`num_retries=0`), so every
attempt passes through this loop and lands in the ledger's `by_deployment` rows with the
deployment that served or failed it. Deployments marked `fallback` form a second group that is
tried, in the same attempt, when the primary group fails.

The answer is cached under the role's `model` (see `LLMClient.key_payload`), never under the
deployment that served it, so a re-run is served from the cache whichever deployment answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from falsereject.core.config import RoleModel, Routing
from falsereject.llm.errors import LLMCallError, redact, retry_after_s, secret_values
from falsereject.llm.policy import OUTAGE_REASONS

if TYPE_CHECKING:
    from falsereject.llm.client import ChatResult, LLMClient

FALLBACK_SUFFIX = "#fallback"
# Reasons that belong to one deployment, not to the request: another deployment may answer.
DEPLOYMENT_REASONS = OUTAGE_REASONS


@dataclass
class Routed:
    router: Any
    primary: str
    fallback: str | None
    models: dict[str, str]  # deployment name -> its LiteLLM model id
    secrets: list[str]


_ROUTERS: dict[tuple, Routed] = {}
_LOCK = threading.Lock()


def _signature(role: RoleModel) -> tuple:
    """What a Router depends on: the deployments, the routing and the current env values
    (a changed key or base URL builds a new Router)."""
    envs = tuple(os.environ.get(v) for v in role.env_names())
    return (role.model, role.deployments, role.routing, envs)


def model_list(role: RoleModel) -> list[dict[str, Any]]:
    """The Router's `model_list` for a role: one entry per deployment, keys read from env."""
    out = []
    for d in role.deployments or ():
        params: dict[str, Any] = {"model": d.model, "weight": d.weight}
        if d.api_base_env:
            params["api_base"] = os.environ.get(d.api_base_env)
        if d.api_key_env:
            params["api_key"] = os.environ.get(d.api_key_env)
        if d.rpm is not None:
            params["rpm"] = d.rpm
        if d.tpm is not None:
            params["tpm"] = d.tpm
        group = role.model + (FALLBACK_SUFFIX if d.fallback else "")
        out.append({"model_name": group, "litellm_params": params,
                    "model_info": {"id": d.name}})
    return out


def get_routed(role: RoleModel, litellm: Any) -> Routed:
    """The process's Router for this role configuration (built on first use)."""
    sig = _signature(role)
    with _LOCK:
        routed = _ROUTERS.get(sig)
        if routed is None:
            routing = role.routing or Routing()
            router = litellm.Router(
                model_list=model_list(role),
                routing_strategy=routing.strategy,
                num_retries=0,  # the client's loop retries, so every attempt is accounted
                allowed_fails=routing.allowed_fails,
                cooldown_time=routing.cooldown_s,
                disable_cooldowns=routing.cooldown_s == 0,
                retry_after=0,
            )
            deps = role.deployments or ()
            routed = Routed(
                router=router, primary=role.model,
                fallback=role.model + FALLBACK_SUFFIX if any(d.fallback for d in deps) else None,
                models={d.name: d.model for d in deps},
                secrets=secret_values(d.api_key_env for d in deps),
            )
            _ROUTERS[sig] = routed
    return routed


def _no_deployment(err: BaseException) -> bool:
    """The Router had no deployment to try (all cooling down, or over their rpm/tpm)."""
    return type(err).__name__ in ("RouterRateLimitError", "RouterRateLimitErrorBasic")


def _served_by(resp: Any) -> str | None:
    hidden = getattr(resp, "_hidden_params", None) or {}
    return hidden.get("model_id") if isinstance(hidden, dict) else None


async def call_routed(client: LLMClient, role: RoleModel, kwargs: dict,
                      timeout: float | None) -> ChatResult:
    """One routed chat with the client's bounded retries; raises LLMCallError."""
    from falsereject.llm import client as cl

    litellm = cl._lite()
    routed = get_routed(role, litellm)
    for model in routed.models.values():
        cl._prepare_pricing(model)
    call = {k: v for k, v in kwargs.items() if k not in ("model", "api_base", "api_key")}
    groups = [routed.primary] + ([routed.fallback] if routed.fallback else [])
    ledger, settings = client.ledger, client.settings
    attempt = 0
    while True:
        reason, transient, message, hint = "other", False, "", None
        for group in groups:
            ledger.record_attempt(role.model, retry=attempt > 0 or group != routed.primary)
            start = time.perf_counter()
            try:
                coro = routed.router.acompletion(model=group, **call)
                resp = await (asyncio.wait_for(coro, timeout + 5) if timeout else coro)
                served = _served_by(resp) or "unknown"
                result = client._parse(routed.models.get(served, role.model), resp)
                latency = time.perf_counter() - start
                ledger.record_success(role.model, prompt_tokens=result.prompt_tokens,
                                      completion_tokens=result.completion_tokens,
                                      cost_usd=result.cost_usd, latency_s=latency)
                ledger.record_deployment(role.model, served, reason=None, latency_s=latency,
                                         tokens=result.prompt_tokens + result.completion_tokens)
                client._breaker.success(role.model)
                return dataclasses.replace(result, model=role.model)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - classified below
                if _no_deployment(err):
                    reason, transient = "rate_limit", True
                    message = f"no deployment of {group} available (all cooling down)"
                    hint = getattr(err, "cooldown_time", None)
                    continue
                reason, transient = cl.classify(err)
                transient = transient or reason in DEPLOYMENT_REASONS
                failed = getattr(err, "failed_deployment_id", None) or "unknown"
                ledger.record_deployment(role.model, failed, reason=reason,
                                         latency_s=time.perf_counter() - start)
                message = (err.detail if isinstance(err, LLMCallError)
                           else (str(err).splitlines() or [type(err).__name__])[0][:300])
                hint = retry_after_s(err)
                if not transient:
                    break  # the request itself is bad: no deployment can answer it
        if not transient or attempt >= settings.max_retries:
            ledger.record_failure(role.model, reason)
            message = redact(message, routed.secrets)
            client._breaker.failure(role.model, reason, message)
            client._breaker.check(role.model)
            raise LLMCallError(reason, message, role.model) from None
        ledger.record_retry(role.model, reason)
        await asyncio.sleep(settings.backoff(attempt, None if hint is None
                                             else min(float(hint), settings.backoff_cap_s)))
        attempt += 1
