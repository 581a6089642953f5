"""Guarantee: hosted calls of one client start at least FR_LLM_START_INTERVAL_MS apart, so a
burst of concurrent calls is staggered instead of moving through the event loop in lockstep; a
lone call never waits, and 0 turns the pacing off."""

from __future__ import annotations

import asyncio
import threading
import time

from falsereject.core.config import RoleModel
from falsereject.llm import LLMClient
from falsereject.llm.policy import Pacer
from falsereject.testing.server import FakeOpenAIServer

ROLE = RoleModel(model="openai/test-model", temperature=0.0, top_p=1.0, max_tokens=16,
                 api_base_env="FR_TEST_API_BASE", api_key_env="FR_TEST_API_KEY")


def start_times(pacer: Pacer, n: int) -> list[float]:
    async def go() -> list[float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def one() -> float:
            await pacer.wait()
            return loop.time() - t0

        return list(await asyncio.gather(*(one() for _ in range(n))))

    return asyncio.run(go())


def test_a_burst_is_spaced_by_the_interval():
    times = sorted(start_times(Pacer(0.02), 6))
    assert times[0] < 0.01  # the first call goes at once
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.015, gaps  # timer granularity aside, never closer than the interval
    assert times[-1] >= 5 * 0.02 * 0.9


def test_a_lone_call_and_a_zero_interval_never_wait():
    assert start_times(Pacer(0.5), 1)[0] < 0.1
    assert max(start_times(Pacer(0.0), 50)) < 0.1


def test_the_pacer_state_belongs_to_one_event_loop():
    pacer = Pacer(0.5)
    start_times(pacer, 1)
    assert start_times(pacer, 1)[0] < 0.1  # a new asyncio.run starts unpaced


def test_client_requests_reach_the_server_spaced(monkeypatch):
    monkeypatch.setenv("FR_LLM_START_INTERVAL_MS", "25")
    monkeypatch.setenv("FR_TEST_API_KEY", "sk-test")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    arrivals: list[float] = []
    lock = threading.Lock()

    def responder(body: dict) -> str:
        with lock:
            arrivals.append(time.monotonic())
        return "ok"

    with FakeOpenAIServer(responder=responder) as srv:
        monkeypatch.setenv("FR_TEST_API_BASE", srv.base_url)
        client = LLMClient("paced", use_cache=False, concurrency=8)
        client.chat_many(ROLE, [[{"role": "user", "content": "warm up"}]])  # LiteLLM's setup
        arrivals.clear()
        convs = [[{"role": "user", "content": f"q {i}"}] for i in range(8)]
        results = client.chat_many(ROLE, convs)
    assert [r.text for r in results] == ["ok"] * 8
    arrivals.sort()
    # sent >= 25 ms apart; arrival jitter on a busy machine can only shrink a gap a little
    assert arrivals[-1] - arrivals[0] >= 7 * 0.025 * 0.8
