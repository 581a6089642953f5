"""How the client spends its patience: settings from the environment, backoff, the rate-limit
pause shared by every call to a model, and the outage stop.

Throughput and retry settings are machine settings: they come from the environment, never from
params, so changing them does not rerun a stage.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from falsereject.core.config import ConfigError
from falsereject.llm.errors import LLMOutageError

# Reasons that say the endpoint itself is broken (not this one request): enough of them in a row
# and the stage stops instead of recording every remaining row as failed.
OUTAGE_REASONS = frozenset({"auth", "not_found", "connection", "timeout", "server_error",
                            "rate_limit", "local_error"})

# sequences per embedded-model `generate` call; on 2 CPU cores 32 gave 1.6x the tokens/s of 16
DEFAULT_LOCAL_BATCH = 32


def _env_number(name: str, default: float, kind: type) -> Any:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} must be a {kind.__name__}"
                          ) from None
    if value < 0:
        raise ConfigError(f"environment variable {name}={raw!r} must not be negative")
    return value


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int)


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)


@dataclass(frozen=True)
class Settings:
    concurrency: int
    local_concurrency: int
    timeout_s: float
    local_timeout_s: float | None
    max_retries: int
    backoff_s: float
    backoff_cap_s: float
    max_consecutive_failures: int

    @staticmethod
    def from_env(concurrency: int | None = None) -> Settings:
        conc = concurrency or env_int("FR_LLM_CONCURRENCY", 16) or 1
        return Settings(
            concurrency=conc,
            # the embedded engine batches what is queued: let two full batches wait on it (one
            # running, one filling) so it never idles between batches for want of requests
            local_concurrency=max(conc, 2 * env_int("FR_LOCAL_BATCH_SIZE", DEFAULT_LOCAL_BATCH)),
            timeout_s=env_float("FR_LLM_TIMEOUT_S", 120.0),
            local_timeout_s=env_float("FR_LOCAL_TIMEOUT_S", 0.0) or None,
            max_retries=env_int("FR_LLM_MAX_RETRIES", 4),
            backoff_s=env_float("FR_LLM_BACKOFF_S", 1.0),
            backoff_cap_s=env_float("FR_LLM_BACKOFF_CAP_S", 30.0),
            max_consecutive_failures=env_int("FR_LLM_MAX_CONSECUTIVE_FAILURES", 20),
        )

    def backoff(self, attempt: int, hinted_s: float | None) -> float:
        """Jittered exponential delay before retry `attempt + 1`; at least the server's hint
        (capped at a minute)."""
        delay = min(self.backoff_cap_s, self.backoff_s * (2 ** attempt))
        delay *= 0.5 + random.random() / 2
        if hinted_s is not None:
            delay = max(delay, min(hinted_s, 60.0))
        return delay


class Cooldown:
    """A rate limit is per key, not per request: after a 429 every call to that model waits."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # model -> time.monotonic()

    def pause(self, model: str, delay_s: float) -> None:
        self._until[model] = max(self._until.get(model, 0.0), time.monotonic() + delay_s)

    async def wait(self, model: str) -> None:
        while (left := self._until.get(model, 0.0) - time.monotonic()) > 0:
            await asyncio.sleep(left)


class Breaker:
    """Trips for a model after `limit` calls in a row failed for an endpoint reason; from then
    on every call to it raises LLMOutageError (0 disables)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._streak: dict[str, list[str]] = {}  # model -> reasons of consecutive failures
        self._tripped: dict[str, str] = {}  # model -> message

    def check(self, model: str) -> None:
        if model in self._tripped:
            raise LLMOutageError(self._tripped[model])

    def success(self, model: str) -> None:
        self._streak.pop(model, None)

    def failure(self, model: str, reason: str, message: str) -> None:
        if reason not in OUTAGE_REASONS:
            self._streak.pop(model, None)  # a per-request problem says the endpoint is up
            return
        streak = self._streak.setdefault(model, [])
        streak.append(reason)
        if self.limit and len(streak) >= self.limit and model not in self._tripped:
            counts = ", ".join(f"{r} x{n}" for r, n in sorted(Counter(streak).items()))
            self._tripped[model] = (
                f"{model}: {len(streak)} calls in a row failed after retries ({counts}); "
                f"last error: {message}. Check the endpoint, its API key and base URL "
                f"environment variables; completed calls are cached, so a re-run resumes "
                f"(FR_LLM_MAX_CONSECUTIVE_FAILURES={self.limit}, 0 disables this check)"
            )
