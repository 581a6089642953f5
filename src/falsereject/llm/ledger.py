"""Per-stage accounting of LLM traffic: calls, cache hits, failures, tokens, cost, latency."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falsereject.llm.errors import LLMOutageError
from falsereject.llm.policy import OUTAGE_REASONS


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def failure_problem(summary: dict[str, Any], max_failed_share: float) -> str | None:
    """Why a stage with this ledger summary must fail, or None: some model's calls all failed,
    or more than `max_failed_share` of them failed for endpoint reasons. Judged per model, so a
    dead judge endpoint is caught even when local students answer. Cache hits are successes."""
    problems = []
    for model, block in sorted(summary.get("by_model", {}).items()):
        requests = block["requests"]
        if not requests:
            continue
        failures = block["failures_by_reason"]
        endpoint = sum(n for reason, n in failures.items() if reason in OUTAGE_REASONS)
        reasons = ", ".join(f"{reason} x{n}" for reason, n in sorted(failures.items()))
        if block["failed_requests"] >= requests:
            problems.append(f"{model}: all {requests} calls failed ({reasons})")
        elif endpoint / requests > max_failed_share:
            problems.append(f"{model}: {endpoint} of {requests} calls failed for endpoint "
                            f"reasons ({reasons}), more than run.max_failed_share="
                            f"{max_failed_share}")
    if not problems:
        return None
    return (f"stage {summary['stage']}: " + "; ".join(problems) + ". Check the endpoint, its "
            "API key and base URL environment variables; completed calls are cached, so a "
            "re-run resumes")


@dataclass
class _ModelStats:
    requests: int = 0
    cache_hits: int = 0
    api_calls: int = 0
    retries: int = 0
    failures: Counter = field(default_factory=Counter)
    retry_reasons: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    latencies: list[float] = field(default_factory=list)


@dataclass
class _DeploymentStats:
    """Attempts one deployment of a routed role served or failed (see llm/router.py)."""

    attempts: int = 0
    successes: int = 0
    tokens: int = 0
    failures: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def block(self) -> dict[str, Any]:
        p50 = percentile(self.latencies, 0.5)
        return {"attempts": self.attempts, "successes": self.successes, "tokens": self.tokens,
                "failures_by_reason": dict(sorted(self.failures.items())),
                "latency_p50_s": None if p50 is None else round(p50, 4)}


class Ledger:
    """Thread-safe counters; `summary()` is what lands in reports/<stage>/llm_ledger.json."""

    def __init__(self, stage: str):
        self.stage = stage
        self._lock = threading.Lock()
        self._models: dict[str, _ModelStats] = {}
        self._deployments: dict[str, dict[str, _DeploymentStats]] = {}

    def _m(self, model: str) -> _ModelStats:
        return self._models.setdefault(model, _ModelStats())

    def record_request(self, model: str, *, cached: bool) -> None:
        with self._lock:
            s = self._m(model)
            s.requests += 1
            s.cache_hits += int(cached)

    def record_attempt(self, model: str, *, retry: bool) -> None:
        with self._lock:
            s = self._m(model)
            s.api_calls += 1
            s.retries += int(retry)

    def record_retry(self, model: str, reason: str) -> None:
        """A transient failure that will be retried (the retry itself is an attempt)."""
        with self._lock:
            self._m(model).retry_reasons[reason] += 1

    def record_success(self, model: str, *, prompt_tokens: int, completion_tokens: int,
                       cost_usd: float | None, latency_s: float) -> None:
        with self._lock:
            s = self._m(model)
            s.prompt_tokens += prompt_tokens
            s.completion_tokens += completion_tokens
            if cost_usd is None:
                s.cost_known = False
            else:
                s.cost_usd += cost_usd
            s.latencies.append(latency_s)

    def record_deployment(self, model: str, deployment: str, *, reason: str | None,
                          latency_s: float, tokens: int = 0) -> None:
        """One attempt of routed role `model` on `deployment`: served (reason None) or failed."""
        with self._lock:
            s = self._deployments.setdefault(model, {}).setdefault(deployment,
                                                                   _DeploymentStats())
            s.attempts += 1
            if reason is None:
                s.successes += 1
                s.tokens += tokens
                s.latencies.append(latency_s)
            else:
                s.failures[reason] += 1

    def state(self) -> tuple[dict, dict]:
        """A picklable copy of the counters (a worker process hands it to `absorb`)."""
        import copy

        with self._lock:
            return copy.deepcopy(self._models), copy.deepcopy(self._deployments)

    def absorb(self, state: tuple[dict, dict]) -> None:
        """Add another ledger's `state()` to this one (llm/pool.py merges its workers')."""
        models, deployments = state
        with self._lock:
            for model, o in models.items():
                s = self._m(model)
                for name in ("requests", "cache_hits", "api_calls", "retries",
                             "prompt_tokens", "completion_tokens", "cost_usd"):
                    setattr(s, name, getattr(s, name) + getattr(o, name))
                s.failures.update(o.failures)
                s.retry_reasons.update(o.retry_reasons)
                s.cost_known = s.cost_known and o.cost_known
                s.latencies.extend(o.latencies)
            for model, deps in deployments.items():
                for dep, o in deps.items():
                    s = self._deployments.setdefault(model, {}).setdefault(
                        dep, _DeploymentStats())
                    s.attempts += o.attempts
                    s.successes += o.successes
                    s.tokens += o.tokens
                    s.failures.update(o.failures)
                    s.latencies.extend(o.latencies)

    def record_failure(self, model: str, reason: str) -> None:
        with self._lock:
            self._m(model).failures[reason] += 1

    @staticmethod
    def _block(stats: list[_ModelStats]) -> dict[str, Any]:
        failures: Counter = Counter()
        retried: Counter = Counter()
        for s in stats:
            failures.update(s.failures)
            retried.update(s.retry_reasons)
        lat = [x for s in stats for x in s.latencies]
        p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
        return {
            "requests": sum(s.requests for s in stats),
            "cache_hits": sum(s.cache_hits for s in stats),
            "api_calls": sum(s.api_calls for s in stats),
            "retries": sum(s.retries for s in stats),
            "failed_requests": sum(failures.values()),
            "failures_by_reason": dict(sorted(failures.items())),
            "retries_by_reason": dict(sorted(retried.items())),
            "prompt_tokens": sum(s.prompt_tokens for s in stats),
            "completion_tokens": sum(s.completion_tokens for s in stats),
            "cost_usd": round(sum(s.cost_usd for s in stats), 6)
            if all(s.cost_known for s in stats) else None,
            "latency_p50_s": None if p50 is None else round(p50, 4),
            "latency_p95_s": None if p95 is None else round(p95, 4),
        }

    def summary(self) -> dict[str, Any]:
        with self._lock:
            out = {"stage": self.stage, **self._block(list(self._models.values()))}
            out["by_model"] = {m: self._block([s]) for m, s in sorted(self._models.items())}
            if self._deployments:
                out["by_deployment"] = {
                    m: {d: s.block() for d, s in sorted(deps.items())}
                    for m, deps in sorted(self._deployments.items())}
        return out

    def check(self, max_failed_share: float) -> None:
        """Stop the stage (LLMOutageError, exit 2) when every LLM call failed, or when more than
        `max_failed_share` of them failed for endpoint reasons (connection, auth, 5xx, timeout,
        ...): such a run must not be recorded as a result. Call it before writing outputs."""
        message = failure_problem(self.summary(), max_failed_share)
        if message:
            raise LLMOutageError(message)

    def write(self, path: str | Path) -> dict[str, Any]:
        summary = self.summary()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
        return summary
