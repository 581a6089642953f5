"""Guarantee: under mixed faults every row ends done or failed-with-reason, retries are bounded,
the ledger counts failures by reason, and a dead endpoint stops a stage early."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections import Counter
from pathlib import Path

import pytest
from server_roles import extract_responder
from stage_cli import load_stage

from falsereject.core.config import RoleModel
from falsereject.llm import ChatResult, LLMCallError, LLMClient, LLMOutageError, run
from falsereject.testing.server import FakeOpenAIServer, default_responder

ROLE = RoleModel(model="openai/test-model", temperature=0.0, top_p=1.0, max_tokens=16,
                 api_base_env="FR_TEST_API_BASE", api_key_env="FR_TEST_API_KEY")
TRANSIENT = ["rate_limit", "server_error", "unavailable", "timeout", "reset", "malformed",
             "truncated", "empty_choices"]
SENTINEL = "sk-SENTINEL-faults-0123456789abcdef"
CLIENT_REASONS = {"rate_limit", "timeout", "server_error", "connection", "malformed_response",
                  "empty_response", "auth", "not_found", "bad_request", "content_filter",
                  "context_window", "other"}


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("FR_TEST_API_KEY", SENTINEL)
    monkeypatch.setenv("FR_LLM_MAX_RETRIES", "2")
    monkeypatch.setenv("FR_LLM_TIMEOUT_S", "0.5")
    monkeypatch.setenv("FR_LLM_BACKOFF_S", "0.01")
    monkeypatch.setenv("FR_LLM_CONCURRENCY", "16")
    monkeypatch.setenv("FR_LLM_CACHE_DIR", str(tmp_path / "cache"))
    return monkeypatch


def mixed_faults(rate: float, seed: int = 0):
    """`rate` of attempts fail, spread over every transient kind; rows marked `poison` always
    fail with a 500, so some rows exhaust their retries for sure."""
    rng = random.Random(seed)

    def pick(body: dict, index: int) -> str | None:
        if "poison" in body["messages"][-1]["content"]:
            return "server_error"
        return rng.choice(TRANSIENT) if rng.random() < rate else None

    return pick


def test_mixed_faults_lose_no_row_and_ledger_counts_reasons(env, tmp_path):
    rows = [f"question {i}" + (" poison" if i % 25 == 0 else "") for i in range(150)]
    convs = [[{"role": "user", "content": q}] for q in rows]
    with FakeOpenAIServer(faults=mixed_faults(0.3), hang_s=1.0) as srv:
        env.setenv("FR_TEST_API_BASE", srv.base_url)
        client = LLMClient("faults")
        results = client.chat_many(ROLE, convs, seed=1)
        outcomes = srv.outcome_counts()
        served = srv.request_count

    assert len(results) == len(rows)
    failed = [r for r in results if isinstance(r, LLMCallError)]
    for conv, res in zip(convs, results, strict=True):
        if isinstance(res, ChatResult):  # the answer belongs to this row, not a neighbour
            assert res.text == default_responder({"messages": conv, "seed": 1})
        else:
            assert res.reason and res.reason != "other"
    assert {r for r in rows if "poison" in r} <= {
        q for q, r in zip(rows, results, strict=True) if isinstance(r, LLMCallError)}
    assert sum(outcomes[k] for k in TRANSIENT) > 0.25 * served  # faults really happened
    assert len(set(outcomes) & set(TRANSIENT)) == len(TRANSIENT)
    assert served <= len(rows) * 3  # bounded: first try + 2 retries per row

    ledger = client.write_ledger(tmp_path / "reports")
    assert ledger["requests"] == len(rows) and ledger["api_calls"] == served
    assert ledger["failed_requests"] == len(failed)
    assert ledger["failures_by_reason"] == dict(sorted(Counter(f.reason for f in failed).items()))
    assert sum(ledger["retries_by_reason"].values()) == ledger["retries"] == served - len(rows)
    on_disk = json.loads((tmp_path / "reports" / "llm_ledger.json").read_text())
    assert on_disk["failures_by_reason"] == ledger["failures_by_reason"]
    # each success was cached as it completed; failures were not
    assert len(list((tmp_path / "cache").rglob("*.json"))) == len(rows) - len(failed)


def test_rerun_after_faults_only_retries_the_failed_rows(env):
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(40)]
    with FakeOpenAIServer(faults=mixed_faults(0.5, seed=3)) as srv:
        env.setenv("FR_TEST_API_BASE", srv.base_url)
        env.setenv("FR_LLM_MAX_RETRIES", "0")
        first = LLMClient("a").chat_many(ROLE, convs)
        n_failed = sum(isinstance(r, LLMCallError) for r in first)
        before = srv.request_count
        srv.faults = None
        second = LLMClient("a").chat_many(ROLE, convs)
        assert srv.request_count - before == n_failed > 0
    assert all(isinstance(r, ChatResult) for r in second)


def test_dead_endpoint_trips_the_breaker_after_a_bounded_number_of_calls(env):
    env.setenv("FR_LLM_MAX_CONSECUTIVE_FAILURES", "5")
    env.setenv("FR_LLM_CONCURRENCY", "4")
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(200)]
    with FakeOpenAIServer(faults=lambda body, i: "reset") as srv:
        env.setenv("FR_TEST_API_BASE", srv.base_url)
        client = LLMClient("dead")
        with pytest.raises(LLMOutageError, match=r"5 calls in a row failed.*connection x5"):
            client.chat_many(ROLE, convs)
        assert srv.request_count <= (5 + 4) * 3


def test_bad_key_fails_fast_without_retries_and_never_leaks(env):
    env.setenv("FR_LLM_MAX_CONSECUTIVE_FAILURES", "3")
    env.setenv("FR_LLM_CONCURRENCY", "1")
    with FakeOpenAIServer(faults=lambda body, i: "auth") as srv:
        env.setenv("FR_TEST_API_BASE", srv.base_url)
        client = LLMClient("auth")
        with pytest.raises(LLMCallError) as info:
            run(client.achat(ROLE, [{"role": "user", "content": "hi"}]))
        assert info.value.reason == "auth" and srv.request_count == 1  # not retried
        assert SENTINEL not in str(info.value) and "***" in str(info.value)
        with pytest.raises(LLMOutageError) as outage:
            client.chat_many(ROLE, [[{"role": "user", "content": f"q{i}"}] for i in range(50)])
        assert SENTINEL not in str(outage.value)
        assert srv.request_count == 3


def test_per_request_rejections_do_not_trip_the_breaker(env):
    env.setenv("FR_LLM_MAX_CONSECUTIVE_FAILURES", "3")
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(20)]
    with FakeOpenAIServer(faults=lambda body, i: "bad_request") as srv:
        env.setenv("FR_TEST_API_BASE", srv.base_url)
        results = LLMClient("bad").chat_many(ROLE, convs)
    assert [r.reason for r in results] == ["bad_request"] * 20


# --- the same guarantee through a real stage ---------------------------------------------------

def test_extract_stage_under_30pct_faults_records_every_seed(env, tmp_path, monkeypatch):
    from falsereject.core.compose import compose
    from falsereject.core.io import read_jsonl
    from falsereject.core.taxonomy import CATEGORIES
    extract = load_stage("extract")

    root = Path(__file__).resolve().parents[1]
    seeds = [{**s, "category_text": CATEGORIES[s["category"]], "source": "test"}
             for s in read_jsonl(root / "resources/seeds.jsonl")[:16]]
    poisoned = {s["prompt"] for s in seeds[::5]}
    (tmp_path / "seeds.jsonl").write_text("".join(json.dumps(s) + "\n" for s in seeds))
    (tmp_path / "params.yaml").write_text(
        compose(["llm=vllm", "extract.k=2", "extract.retries=1"], root / "conf"))
    rng = random.Random(7)

    def faults(body: dict, index: int) -> str | None:
        if any(p in body["messages"][-1]["content"] for p in poisoned):
            return "unavailable"
        return rng.choice(TRANSIENT) if rng.random() < 0.3 else None

    out = tmp_path / "out"
    with FakeOpenAIServer(responder=extract_responder, faults=faults, hang_s=1.0) as srv:
        env.setenv("FR_TEST_API_BASE", srv.base_url)
        env.setenv("VLLM_API_BASE", srv.base_url)
        env.setenv("VLLM_API_KEY", SENTINEL)
        monkeypatch.chdir(root)
        monkeypatch.setattr(sys, "argv", [
            "extract", "--params", str(tmp_path / "params.yaml"),
            "--seeds", str(tmp_path / "seeds.jsonl"), "--prompt", "prompts/extract_v1.yaml",
            "--vote-prompt", "prompts/vote_v1.yaml", "--graph", str(out / "graph.json"),
            "--subgraphs", str(out / "subgraphs.jsonl"), "--reports-dir", str(out / "rep")])
        extract.main()
        served, outcomes = srv.request_count, srv.outcome_counts()

    rows = read_jsonl(out / "subgraphs.jsonl")
    assert [r["seed_id"] for r in rows] == sorted(s["id"] for s in seeds)  # none lost
    assert all(r["status"] in ("ok", "failed") for r in rows)
    for r in rows:
        if r["seed_prompt"] in poisoned:
            assert r["status"] == "failed" and "llm_error:server_error" in r["reason"]
        if r["status"] == "failed":
            assert r["reason"]
    assert sum(r["status"] == "ok" for r in rows) >= len(seeds) - len(poisoned) - 2
    assert sum(outcomes[k] for k in TRANSIENT) > 0.2 * served

    ledger = json.loads((out / "rep" / "llm_ledger.json").read_text())
    llm_errors = Counter(reason.split(":", 1)[1] for r in rows for c in r["candidates"]
                         for reason in c["retry_reasons"] if reason.startswith("llm_error:"))
    # a vote whose call failed falls back to the consensus rule and says why
    llm_errors.update(r["vote"]["reason"].split(":")[0] for r in rows
                      if r["vote"]["method"] == "consensus"
                      and r["vote"]["reason"].split(":")[0] in CLIENT_REASONS)
    assert ledger["failures_by_reason"] == dict(sorted(llm_errors.items()))
    assert ledger["api_calls"] == served <= ledger["requests"] * 3
    assert SENTINEL not in (out / "rep" / "llm_ledger.json").read_text()


def test_a_rate_limit_pauses_every_call_to_that_model(env):
    env.setenv("FR_LLM_CONCURRENCY", "4")
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
    # successes take longer than the 429 so no slot frees before the client has seen the 429
    with FakeOpenAIServer(faults=["rate_limit"], retry_after_s=0.6, latency_s=0.3) as srv:
        env.setenv("FR_TEST_API_BASE", srv.base_url)
        results = LLMClient("rl").chat_many(ROLE, convs)
        first, later = srv.arrivals[0], srv.arrivals[4:]
    assert all(isinstance(r, ChatResult) for r in results)
    # after the 429 no new request goes out until Retry-After has passed
    assert later and min(later) - first >= 0.6


def test_generate_stage_under_30pct_faults_accounts_for_every_candidate(env, tmp_path,
                                                                        monkeypatch):
    from server_roles import pipeline_responder
    from test_generate_vllm import SEEDS

    from falsereject.core.compose import compose
    from falsereject.core.io import read_jsonl
    extract, generate = load_stage("extract"), load_stage("generate")

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "seeds.jsonl").write_text("".join(json.dumps(s) + "\n" for s in SEEDS))
    (tmp_path / "params.yaml").write_text(compose(
        ["llm=vllm", "experiment=smoke", "generate.n_candidates=6",
         "generate.max_iterations=2", "generate.dedup.method=ngram"], root / "conf"))
    rng = random.Random(3)
    faulty = {"on": False}

    def faults(body: dict, index: int) -> str | None:
        return rng.choice(TRANSIENT) if faulty["on"] and rng.random() < 0.3 else None

    t = tmp_path
    flags = {
        extract: ["--seeds", str(t / "seeds.jsonl"), "--prompt", "prompts/extract_v1.yaml",
                  "--vote-prompt", "prompts/vote_v1.yaml", "--graph", str(t / "graph.json"),
                  "--subgraphs", str(t / "subgraphs.jsonl"), "--reports-dir", str(t / "rx")],
        generate: ["--subgraphs", str(t / "subgraphs.jsonl"),
                   "--generator-prompt", "prompts/generator_v2.yaml",
                   "--discriminator-prompt", "prompts/discriminator_v1.yaml",
                   "--orchestrator-prompt", "prompts/orchestrator_v1.yaml",
                   "--accepted", str(t / "accepted.jsonl"), "--rejected", str(t / "rej.jsonl"),
                   "--review-dir", str(t / "review"),
                   "--reports-dir", str(t / "rg")],
    }
    with FakeOpenAIServer(responder=pipeline_responder, faults=faults, hang_s=1.0) as srv:
        env.setenv("VLLM_API_BASE", srv.base_url)
        env.setenv("VLLM_API_KEY", "sk-test")
        monkeypatch.chdir(root)
        monkeypatch.setattr(generate, "load_embed", lambda: hashed_embeddings)
        for module in (extract, generate):
            faulty["on"] = module is generate
            monkeypatch.setattr(sys, "argv", [module.__file__, "--params",
                                              str(t / "params.yaml"), *flags[module]])
            module.main()
        outcomes = srv.outcome_counts()

    ok_seeds = [r for r in read_jsonl(t / "subgraphs.jsonl") if r["status"] == "ok"]
    accepted, rejected = read_jsonl(t / "accepted.jsonl"), read_jsonl(t / "rej.jsonl")
    assert len(ok_seeds) == len(SEEDS)
    assert len(accepted) + len(rejected) == len(ok_seeds) * 6  # every candidate accounted for
    assert all(r["rejected_at"] and r["reason"] for r in rejected)
    assert sum(outcomes[k] for k in TRANSIENT) > 0
    ledger = json.loads((t / "rg" / "llm_ledger.json").read_text())
    assert ledger["failed_requests"] == sum(ledger["failures_by_reason"].values())
    assert ledger["api_calls"] <= ledger["requests"] * 3
    assert sum(ledger["retries_by_reason"].values()) == ledger["retries"] > 0


def hashed_embeddings(texts):
    """Unit vectors from word hashes: dedup and diversity metrics without loading a model."""
    import numpy as np

    out = np.zeros((len(texts), 64))
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, hash(word) % 64] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_a_broken_local_model_is_not_retried_and_stops_the_stage(env, monkeypatch):
    from concurrent.futures import Future

    from falsereject.llm.local import engine as localmodel

    class BrokenEngine:
        def submit(self, req):
            fut: Future = Future()
            fut.set_exception(RuntimeError("grammar_functor.cc: Check failed (compile_json)"))
            return fut

    monkeypatch.setitem(localmodel._ENGINES, "broken", BrokenEngine())
    env.setenv("FR_LLM_MAX_CONSECUTIVE_FAILURES", "6")
    env.setenv("FR_LLM_CONCURRENCY", "2")
    env.setenv("FR_LOCAL_BATCH_SIZE", "1")  # at most 2 local calls in flight
    role = RoleModel(model="local/broken", temperature=0.0, top_p=1.0, max_tokens=8,
                     api_base_env=None, api_key_env=None)
    client = LLMClient("local")
    with pytest.raises(LLMCallError) as info:
        run(client.achat(role, [{"role": "user", "content": "hi"}]))
    assert info.value.reason == "local_error" and "Check failed" in str(info.value)
    with pytest.raises(LLMOutageError, match="local_error x6"):
        client.chat_many(role, [[{"role": "user", "content": f"q{i}"}] for i in range(50)])
    ledger = client.ledger.summary()
    assert ledger["retries"] == 0 and ledger["api_calls"] <= 6 + 2


def test_local_calls_may_queue_two_batches_on_the_engine(env, monkeypatch):
    import threading
    from concurrent.futures import Future

    from falsereject.llm.local import engine as localmodel

    class CountingEngine:
        """Answers only once 16 requests wait at once: proves the client lets them queue."""

        def __init__(self):
            self.pending: list[Future] = []
            self.lock = threading.Lock()

        def submit(self, req):
            fut: Future = Future()
            with self.lock:
                self.pending.append(fut)
                if len(self.pending) == 16:
                    for f in self.pending:
                        f.set_result(localmodel.GenResult("ok", 1, 1, "stop"))
                    self.pending = []
            return fut

    monkeypatch.setitem(localmodel._ENGINES, "counting", CountingEngine())
    env.setenv("FR_LLM_CONCURRENCY", "4")
    env.setenv("FR_LOCAL_BATCH_SIZE", "8")
    role = RoleModel(model="local/counting", temperature=0.0, top_p=1.0, max_tokens=8,
                     api_base_env=None, api_key_env=None)

    async def go():
        client = LLMClient("local")
        convs = [[{"role": "user", "content": f"q{i}"}] for i in range(32)]
        return await asyncio.wait_for(client.achat_many(role, convs), timeout=30)

    assert [r.text for r in run(go())] == ["ok"] * 32
