"""Guarantee: a ClientPool of worker processes returns every result in input order, merges the
workers' ledgers into one, and its workers share the disk cache (a re-run pays nothing)."""

from __future__ import annotations

import hashlib
import json

from falsereject.core.config import RoleModel
from falsereject.llm import ChatResult, LLMCallError
from falsereject.llm.pool import ClientPool
from falsereject.testing.server import FakeOpenAIServer

ROLE = RoleModel(model="openai/test-model", temperature=0.0, top_p=1.0, max_tokens=16,
                 api_base_env="FR_TEST_API_BASE", api_key_env="FR_TEST_API_KEY")


def expected(content: str) -> str:
    msgs = [{"role": "user", "content": content}]
    digest = hashlib.sha256(json.dumps([msgs, 5], sort_keys=True).encode()).hexdigest()[:8]
    return f"Here is a helpful and complete answer ({digest})."


def test_pool_keeps_order_merges_ledgers_and_shares_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FR_LLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FR_TEST_API_KEY", "sk-test")
    monkeypatch.setenv("FR_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    prompts = [f"question {i}" + (" poison" if i == 7 else "") for i in range(41)]
    convs = [[{"role": "user", "content": p}] for p in prompts]

    def faults(body: dict, index: int) -> str | None:
        return "bad_request" if "poison" in body["messages"][-1]["content"] else None

    with FakeOpenAIServer(latency_s=0.01, faults=faults) as srv:
        monkeypatch.setenv("FR_TEST_API_BASE", srv.base_url)
        with ClientPool("pooled", workers=2, concurrency=8) as pool:
            assert len(pool.pids) == 2
            results = pool.chat_many(ROLE, convs, seed=5)
            for p, r in zip(prompts, results, strict=True):
                if "poison" in p:
                    assert isinstance(r, LLMCallError) and r.reason == "bad_request"
                else:
                    assert isinstance(r, ChatResult) and r.text == expected(p)
            summary = pool.ledger.summary()
            assert summary["requests"] == 41 and summary["api_calls"] == 41
            assert summary["failures_by_reason"] == {"bad_request": 1}
            assert summary["by_model"]["openai/test-model"]["cache_hits"] == 0

            before = srv.request_count
            again = pool.chat_many(ROLE, convs, seed=5)
            assert srv.request_count == before + 1  # only the failed row is asked again
            assert [getattr(r, "text", None) for r in again] == [
                getattr(r, "text", None) for r in results]
            assert pool.ledger.summary()["cache_hits"] == 40
