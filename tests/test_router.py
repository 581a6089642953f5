"""Guarantee: a role served by several deployments (LiteLLM Router) completes every row or
records it failed with a reason; traffic moves off a dead and a rate-limited deployment to the
healthy one; the ledger has a row per deployment; answers are cached under a key that does not
depend on the deployment that served them, so a re-run pays nothing."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from falsereject.core.config import RoleModel
from falsereject.llm import (
    ChatResult,
    LLMCallError,
    LLMClient,
    MissingCredentialsError,
    require_credentials,
)
from falsereject.testing.server import FakeOpenAIServer

KEY = "sk-ROUTER-sentinel-0123456789abcdef"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: connections are refused


def fleet(**routing) -> RoleModel:
    deps = [{"name": n, "model": "openai/test-model", "api_base_env": f"FR_TEST_BASE_{n.upper()}",
             "api_key_env": "FR_TEST_ROUTER_KEY", "rpm": 6000}
            for n in ("dead", "limited", "healthy")]
    return RoleModel(model="fleet-model", temperature=0.0, top_p=1.0, max_tokens=16,
                     api_base_env=None, api_key_env=None, deployments=deps,
                     routing={"strategy": "simple-shuffle", "allowed_fails": 1,
                              "cooldown_s": 30.0, **routing})


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("FR_TEST_ROUTER_KEY", KEY)
    monkeypatch.setenv("FR_LLM_MAX_RETRIES", "4")
    monkeypatch.setenv("FR_LLM_TIMEOUT_S", "5")
    monkeypatch.setenv("FR_LLM_BACKOFF_S", "0.01")
    monkeypatch.setenv("FR_LLM_CONCURRENCY", "8")
    monkeypatch.setenv("FR_LLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FR_TEST_BASE_DEAD", f"http://127.0.0.1:{closed_port()}/v1")
    return monkeypatch


def test_traffic_moves_to_the_healthy_deployment_and_a_rerun_pays_nothing(env):
    role = fleet()
    convs = [[{"role": "user", "content": f"question {i}"}] for i in range(60)]
    with FakeOpenAIServer(faults=lambda body, i: "rate_limit", retry_after_s=0.01) as limited, \
            FakeOpenAIServer() as healthy:
        env.setenv("FR_TEST_BASE_LIMITED", limited.base_url)
        env.setenv("FR_TEST_BASE_HEALTHY", healthy.base_url)
        client = LLMClient("router")
        results = client.chat_many(role, convs, seed=3)
        summary = client.ledger.summary()

        # every row completed (or would be recorded failed with a reason: none needed here)
        assert all(isinstance(r, ChatResult) for r in results), [
            r for r in results if isinstance(r, LLMCallError)]
        assert {r.model for r in results} == {"fleet-model"}  # the role, not a deployment
        assert healthy.completed == 60
        assert limited.outcome_counts() == {"rate_limit": limited.request_count}
        # the cooldown took the bad deployments out after a couple of failures each
        assert limited.request_count <= 8

        deps = summary["by_deployment"]["fleet-model"]
        assert deps["healthy"]["successes"] == 60 and not deps["healthy"]["failures_by_reason"]
        assert deps["dead"]["successes"] == 0
        assert set(deps["dead"]["failures_by_reason"]) == {"connection"}
        assert deps["limited"]["successes"] == 0
        assert deps["limited"]["failures_by_reason"] == {"rate_limit": limited.request_count}
        row = summary["by_model"]["fleet-model"]
        assert row["requests"] == 60 and row["failed_requests"] == 0
        assert row["api_calls"] == sum(d["attempts"] for d in deps.values())
        assert KEY not in str(summary)

        # the re-run: every answer from the cache, no request reaches any server
        before = (limited.request_count, healthy.request_count)
        again = LLMClient("router-again")
        rerun = again.chat_many(role, convs, seed=3)
        assert [r.text for r in rerun] == [r.text for r in results]
        assert all(r.cached for r in rerun)
        assert (limited.request_count, healthy.request_count) == before
        assert again.ledger.summary()["api_calls"] == 0


def test_cache_key_ignores_which_deployment_serves(env, tmp_path):
    """The same answers are hits for a fleet with other endpoints, weights or limits, and for
    a single-endpoint role of the same model; a fleet of another model misses."""
    msgs = [{"role": "user", "content": "hello"}]
    key = dict(max_tokens=16, temperature=0.0, seed=None, json_schema=None)
    base = LLMClient.key_payload(fleet(), msgs, **key)
    other = fleet().model_copy(update={"deployments": fleet().deployments[1:]})
    assert LLMClient.key_payload(other, msgs, **key) == base
    single = RoleModel(model="openai/test-model", temperature=0.0, top_p=1.0, max_tokens=16,
                       api_base_env="X", api_key_env=None)
    same_model_fleet = single.model_copy(update={
        "api_base_env": None,
        "deployments": [d.model_copy(update={"weight": 3.0}) for d in fleet().deployments]})
    assert (LLMClient.key_payload(same_model_fleet, msgs, **key)
            == LLMClient.key_payload(single, msgs, **key))
    llama = fleet().model_copy(update={"deployments": [
        d.model_copy(update={"model": "openai/llama"}) for d in fleet().deployments]})
    assert LLMClient.key_payload(llama, msgs, **key) != base


def test_fallback_deployment_answers_when_every_primary_fails(env):
    deps = [{"name": "primary", "model": "openai/test-model", "api_base_env": "FR_TEST_BASE_DEAD",
             "api_key_env": "FR_TEST_ROUTER_KEY"},
            {"name": "backup", "model": "openai/test-model",
             "api_base_env": "FR_TEST_BASE_HEALTHY", "api_key_env": "FR_TEST_ROUTER_KEY",
             "fallback": True}]
    role = RoleModel(model="fb-model", temperature=0.0, top_p=1.0, max_tokens=16,
                     api_base_env=None, api_key_env=None, deployments=deps)
    with FakeOpenAIServer() as healthy:
        env.setenv("FR_TEST_BASE_HEALTHY", healthy.base_url)
        client = LLMClient("fallback", use_cache=False)
        results = client.chat_many(role, [[{"role": "user", "content": f"q{i}"}]
                                          for i in range(10)])
        assert all(isinstance(r, ChatResult) for r in results)
        deps_row = client.ledger.summary()["by_deployment"]["fb-model"]
        assert deps_row["backup"]["successes"] == 10
        assert deps_row["primary"]["successes"] == 0


def test_every_deployment_down_records_each_row_failed_with_its_reason(env):
    env.setenv("FR_LLM_MAX_RETRIES", "1")
    env.setenv("FR_LLM_MAX_CONSECUTIVE_FAILURES", "0")
    role = fleet(cooldown_s=0.0)
    env.setenv("FR_TEST_BASE_LIMITED", f"http://127.0.0.1:{closed_port()}/v1")
    env.setenv("FR_TEST_BASE_HEALTHY", f"http://127.0.0.1:{closed_port()}/v1")
    client = LLMClient("router-down", use_cache=False)
    results = client.chat_many(role, [[{"role": "user", "content": f"q{i}"}] for i in range(5)])
    assert all(isinstance(r, LLMCallError) and r.reason == "connection" for r in results)
    assert client.ledger.summary()["by_model"]["fleet-model"]["failures_by_reason"] == {
        "connection": 5}


def test_fleet_config_is_validated_and_credentials_checked(env):
    with pytest.raises(ValidationError, match="unique"):
        RoleModel(model="m", temperature=0, top_p=1, max_tokens=1, api_base_env=None,
                  api_key_env=None, deployments=[{"name": "a", "model": "x"},
                                                 {"name": "a", "model": "y"}])
    with pytest.raises(ValidationError, match="fallback: false"):
        RoleModel(model="m", temperature=0, top_p=1, max_tokens=1, api_base_env=None,
                  api_key_env=None, deployments=[{"name": "a", "model": "x", "fallback": True}])
    with pytest.raises(ValidationError, match="routing applies only"):
        RoleModel(model="m", temperature=0, top_p=1, max_tokens=1, api_base_env=None,
                  api_key_env=None, routing={"strategy": "least-busy"})
    with pytest.raises(MissingCredentialsError, match="FR_TEST_BASE_HEALTHY"):
        require_credentials([fleet()])
