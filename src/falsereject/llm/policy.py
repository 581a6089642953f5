"""How the client spends its patience: settings from the environment, backoff, the rate-limit
pause shared by every call to a model, and the outage stop.

Throughput and retry settings are machine settings: they come from the environment, never from
params, so changing them does not rerun a stage.
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections import Counter
from dataclasses import dataclass

from falsereject.core import settings as env_settings
from falsereject.llm.errors import LLMOutageError

# Reasons that say the endpoint itself is broken (not this one request): enough of them in a row
# and the stage stops instead of recording every remaining row as failed.
OUTAGE_REASONS = frozenset({"auth", "not_found", "connection", "timeout", "server_error",
                            "rate_limit", "local_error"})

# sequences per embedded-model `generate` call; on 2 CPU cores 32 gave 1.6x the tokens/s of 16
DEFAULT_LOCAL_BATCH = env_settings.Settings.model_fields["local_batch_size"].default


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
    start_interval_s: float = 0.0

    @staticmethod
    def from_env(concurrency: int | None = None) -> Settings:
        env = env_settings.get()
        conc = concurrency or env.llm_concurrency or 1
        return Settings(
            concurrency=conc,
            # the embedded engine batches what is queued: let two full batches wait on it (one
            # running, one filling) so it never idles between batches for want of requests
            local_concurrency=max(conc, 2 * env.local_batch_size),
            timeout_s=env.llm_timeout_s,
            local_timeout_s=env.local_timeout_s or None,
            max_retries=env.llm_max_retries,
            backoff_s=env.llm_backoff_s,
            backoff_cap_s=env.llm_backoff_cap_s,
            max_consecutive_failures=env.llm_max_consecutive_failures,
            start_interval_s=env.llm_start_interval_ms / 1000,
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


class Pacer:
    """Starts hosted calls at least `interval_s` apart within one event loop.

    Without it, a burst of concurrent calls moves through the event loop in lockstep: every
    call yields at the same await points, so all of them are sent at the end of the burst and
    all come back together, and each wave pays the whole burst's client CPU on top of the
    endpoint's latency (measured: efficiency 0.68 at 64 concurrent calls with 200 ms latency).
    Spacing the starts by about one call's client CPU staggers the calls, so each one pays only
    its own. A lone call, or calls further apart than the interval, never wait. 0 disables.
    """

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._next: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> time

    async def wait(self) -> None:
        if self.interval_s <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next.get(loop, 0.0))
        self._next[loop] = start + self.interval_s
        if start > now:
            await asyncio.sleep(start - now)


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
