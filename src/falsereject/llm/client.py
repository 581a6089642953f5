"""The one LLM client of the pipeline, built on LiteLLM (imported only by `llm/lite.py`).

- async with bounded concurrency (`FR_LLM_CONCURRENCY`), per-call timeout (`FR_LLM_TIMEOUT_S`),
  bounded retries with exponential backoff on transient errors (`FR_LLM_MAX_RETRIES`,
  `FR_LLM_BACKOFF_S`), honouring Retry-After;
- a content-addressed disk cache keyed by model + messages + sampling params
  (`FR_LLM_CACHE_DIR`, default `.cache/llm`);
- a per-stage ledger of calls, cache hits, failures by reason, tokens, cost and latency;
- the embedded model served as the custom LiteLLM provider `local/<name>`, so stages cannot
  tell it from a hosted API or a vLLM server.

Throughput settings come from the environment, never from params, so changing them does not
rerun a stage. API keys are read from the environment variables a role names and are never
written to the cache, the ledger or logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from falsereject.core.config import RoleModel
from falsereject.llm.cache import DiskCache, cache_key
from falsereject.llm.endpoints import served_endpoint
from falsereject.llm.errors import (  # noqa: F401 - MissingCredentialsError: part of this module's API
    LLMCallError,
    MissingCredentialsError,
    classify,
    redact,
    require_credentials,
    retry_after_s,
    secret_values,
)
from falsereject.llm.ledger import Ledger
from falsereject.llm.lite import lite as _lite
from falsereject.llm.local.weights import local_dtype
from falsereject.llm.local_provider import LOCAL_PREFIX
from falsereject.llm.policy import Breaker, Cooldown, Pacer, Settings
from falsereject.llm.pricing import UNPRICED as _UNPRICED
from falsereject.llm.pricing import prepare_pricing as _prepare_pricing

log = logging.getLogger(__name__)
T = TypeVar("T")

CACHE_VERSION = 1


@dataclass(frozen=True)
class ChatResult:
    text: str
    reasoning: str | None
    finish_reason: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    cached: bool



# --- the client -----------------------------------------------------------------------------


class LLMClient:
    def __init__(self, stage: str, *, cache_dir: str | Path | None = None,
                 concurrency: int | None = None, use_cache: bool = True):
        self.stage = stage
        self.settings = Settings.from_env(concurrency)
        self.cache = DiskCache(cache_dir) if use_cache else None
        self.ledger = Ledger(stage)
        self._sems: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._breaker = Breaker(self.settings.max_consecutive_failures)
        self._cooldown = Cooldown()
        self._pacer = Pacer(self.settings.start_interval_s)
        self._local_ready: set[str] = set()

    # a semaphore belongs to one event loop; stages may call asyncio.run more than once
    def _sem(self, local: bool) -> asyncio.Semaphore:
        sems = self._sems.setdefault(asyncio.get_running_loop(), {})
        if local not in sems:
            sems[local] = asyncio.Semaphore(self.settings.local_concurrency if local
                                            else self.settings.concurrency)
        return sems[local]

    @staticmethod
    def key_payload(role: RoleModel, messages: Sequence[dict], *, max_tokens: int,
                    temperature: float, seed: int | None,
                    json_schema: dict | None) -> dict[str, Any]:
        # a routed role: keyed by its name and the models that may answer, never by the
        # deployment that did; a fleet of one model keys like that model alone
        served = sorted({d.model for d in role.deployments or ()} - {role.model})
        # the embedded model answers differently in another precision (FR_LOCAL_DTYPE)
        local = {"local_dtype": local_dtype()} if role.model.startswith(LOCAL_PREFIX) else {}
        return {
            "v": CACHE_VERSION,
            "model": role.model,
            **({"deployment_models": served} if served else {}),
            **local,
            "messages": [{"role": m["role"], "content": m.get("content")} for m in messages],
            "temperature": temperature,
            "top_p": role.top_p,
            "max_tokens": max_tokens,
            "seed": seed,
            "json_schema": json_schema,
        }

    async def achat(self, role: RoleModel, messages: Sequence[dict], *,
                    json_schema: dict | None = None, max_tokens: int | None = None,
                    temperature: float | None = None, seed: int | None = None) -> ChatResult:
        """One chat completion; raises LLMCallError after bounded retries."""
        max_tokens = max_tokens or role.max_tokens
        temperature = role.temperature if temperature is None else temperature
        key = None
        if self.cache is not None:
            key = cache_key(self.key_payload(role, messages, max_tokens=max_tokens,
                                             temperature=temperature, seed=seed,
                                             json_schema=json_schema))
            hit = self.cache.get(key)
            if hit is not None:
                self.ledger.record_request(role.model, cached=True)
                return ChatResult(**{**hit, "cached": True})
        self.ledger.record_request(role.model, cached=False)
        kwargs: dict[str, Any] = {
            "model": role.model,
            "messages": list(messages),
            "temperature": temperature,
            "top_p": role.top_p,
            "max_tokens": max_tokens,
            "num_retries": 0,
        }
        if seed is not None:
            kwargs["seed"] = seed
        if json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": json_schema},
            }
        if role.api_base_env:
            kwargs["api_base"] = os.environ.get(role.api_base_env)
        if role.api_key_env:
            kwargs["api_key"] = os.environ.get(role.api_key_env)
        if not role.api_base_env and (endpoint := served_endpoint(role.model)) is not None:
            kwargs["api_base"], kwargs["api_key"] = endpoint  # e.g. the student on vLLM
        is_local = role.model.startswith(LOCAL_PREFIX)
        timeout = self.settings.local_timeout_s if is_local else self.settings.timeout_s
        if timeout:
            kwargs["timeout"] = timeout
        if is_local:
            await self._ensure_local(role.model)
        if not role.deployments:
            _prepare_pricing(role.model)
        self._breaker.check(role.model)
        secrets = secret_values([role.api_key_env])

        async with self._sem(is_local):
            self._breaker.check(role.model)  # it may have tripped while this call waited
            if not is_local:
                await self._pacer.wait()  # staggered starts: no lockstep waves
            if role.deployments:
                from falsereject.llm.router import call_routed

                result = await call_routed(self, role, kwargs, timeout)
            else:
                result = await self._call_with_retries(role.model, kwargs, timeout, secrets)
        if self.cache is not None and key is not None:
            # written as each call completes, so a killed stage loses no finished call
            self.cache.put(key, {k: v for k, v in asdict(result).items() if k != "cached"})
        return result

    async def _ensure_local(self, model: str) -> None:
        """Load an embedded model before the first call: a missing model is a setup error
        (ModelUnavailableError, raised here), not a per-row failure to retry."""
        if model in self._local_ready:
            return
        from falsereject.llm.local.engine import get_engine

        await asyncio.to_thread(get_engine, model.split("/", 1)[-1])
        self._local_ready.add(model)

    async def _call_with_retries(self, model: str, kwargs: dict, timeout: float | None,
                                 secrets: list[str]) -> ChatResult:
        attempt = 0
        while True:
            await self._cooldown.wait(model)
            self.ledger.record_attempt(model, retry=attempt > 0)
            start = time.perf_counter()
            try:
                coro = _lite().acompletion(**kwargs)
                resp = await (asyncio.wait_for(coro, timeout + 5) if timeout else coro)
                result = self._parse(model, resp)
                self.ledger.record_success(
                    model, prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens, cost_usd=result.cost_usd,
                    latency_s=time.perf_counter() - start,
                )
                self._breaker.success(model)
                return result
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - classified below
                reason, transient = classify(err)
                if model.startswith(LOCAL_PREFIX) and reason != "timeout":
                    # an in-process model failing is a bug or a bad request (say, a JSON schema
                    # its grammar compiler rejects), not a network blip: retrying cannot help
                    reason, transient = "local_error", False
                if not transient or attempt >= self.settings.max_retries:
                    self.ledger.record_failure(model, reason)
                    message = (err.detail if isinstance(err, LLMCallError)
                               else (str(err).splitlines() or [type(err).__name__])[0][:300])
                    message = redact(message, secrets)
                    self._breaker.failure(model, reason, message)
                    self._breaker.check(model)
                    raise LLMCallError(reason, message, model) from None
                self.ledger.record_retry(model, reason)
                delay = self.settings.backoff(attempt, retry_after_s(err))
                if reason == "rate_limit":
                    self._cooldown.pause(model, delay)
                log.debug("retrying %s after %s (%.2fs)", model, reason, delay)
                await asyncio.sleep(delay)
                attempt += 1

    @staticmethod
    def _parse(model: str, resp: Any) -> ChatResult:
        choices = getattr(resp, "choices", None)
        if not choices:
            raise LLMCallError("empty_response", "response has no choices", model)
        msg = choices[0].message
        text = msg.content
        if text is None:
            raise LLMCallError("empty_response", "response message has no content", model)
        reasoning = getattr(msg, "reasoning_content", None)
        usage = getattr(resp, "usage", None)
        cost = None
        hidden = getattr(resp, "_hidden_params", None) or {}
        priced = isinstance(hidden, dict) and "response_cost" in hidden
        if priced:
            cost = hidden.get("response_cost")  # None: LiteLLM knows no price for the model
        if not priced and not model.startswith(LOCAL_PREFIX):
            try:
                cost = _lite().completion_cost(completion_response=resp)
            except Exception:  # noqa: BLE001 - unknown price
                cost = None
        if model.startswith(LOCAL_PREFIX):
            cost = 0.0
        elif model in _UNPRICED:
            cost = None
        return ChatResult(
            text=text,
            reasoning=reasoning,
            finish_reason=getattr(choices[0], "finish_reason", None),
            model=model,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost_usd=None if cost is None else float(cost),
            cached=False,
        )

    async def achat_many(self, role: RoleModel, conversations: Sequence[Sequence[dict]],
                         **kw: Any) -> list[ChatResult | LLMCallError]:
        """Many chats concurrently; failures come back in place as LLMCallError."""

        async def one(msgs: Sequence[dict]) -> ChatResult | LLMCallError:
            try:
                return await self.achat(role, msgs, **kw)
            except LLMCallError as err:
                return err

        return list(await asyncio.gather(*(one(m) for m in conversations)))

    def chat_many(self, role: RoleModel, conversations: Sequence[Sequence[dict]],
                  **kw: Any) -> list[ChatResult | LLMCallError]:
        return run(self.achat_many(role, conversations, **kw))

    def write_ledger(self, reports_dir: str | Path) -> dict[str, Any]:
        return self.ledger.write(Path(reports_dir) / "llm_ledger.json")


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine from synchronous stage code."""
    return asyncio.run(coro)  # type: ignore[arg-type]
