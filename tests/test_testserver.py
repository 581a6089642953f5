"""The loopback OpenAI-compatible test server, driven through the real LLMClient -> LiteLLM path."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from falsereject.core.config import RoleModel
from falsereject.llm import LLMCallError, LLMClient, run
from falsereject.testing.server import FakeOpenAIServer, schema_instance

ROLE = RoleModel(model="openai/test-model", temperature=0.0, top_p=1.0, max_tokens=32,
                 api_base_env="FR_TEST_API_BASE", api_key_env="FR_TEST_API_KEY")
MSGS = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def client_for(monkeypatch):
    def make(srv: FakeOpenAIServer, **env: str) -> LLMClient:
        monkeypatch.setenv("FR_TEST_API_BASE", srv.base_url)
        monkeypatch.setenv("FR_TEST_API_KEY", "sk-test-key")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return LLMClient("test", use_cache=False)

    return make


class Item(BaseModel):
    label: str = Field(min_length=10)
    score: float = Field(ge=2.5)
    kind: str = Field(json_schema_extra={"enum": ["a", "b"]})


class Out(BaseModel):
    items: list[Item] = Field(min_length=2)
    ok: bool
    count: int
    note: str | None = None


def test_schema_instance_validates_against_pydantic_schema():
    value = schema_instance(Out.model_json_schema())
    parsed = Out.model_validate(value)
    assert len(parsed.items) == 2 and parsed.items[0].score >= 2.5
    assert len(parsed.items[0].label) >= 10 and parsed.items[0].kind == "a"


def test_schema_instance_rejects_unsupported():
    with pytest.raises(ValueError):
        schema_instance({"$ref": "http://example.com/schema"})


def test_chat_completion_roundtrip_with_schema(client_for):
    with FakeOpenAIServer() as srv:
        client = client_for(srv)
        res = run(client.achat(ROLE, MSGS, json_schema=Out.model_json_schema(), seed=3))
        Out.model_validate(json.loads(res.text))
        assert res.prompt_tokens == 2 and res.completion_tokens > 0
        assert srv.request_count == 1
        body = srv.requests[0]
        assert body["model"] == "test-model" and body["seed"] == 3
        assert "sk-test-key" not in json.dumps(srv.requests)


def test_custom_responder_and_plain_text(client_for):
    with FakeOpenAIServer(responder=lambda body: body["messages"][-1]["content"].upper()) as srv:
        res = run(client_for(srv).achat(ROLE, MSGS))
    assert res.text == "HELLO THERE"


@pytest.mark.parametrize(("fault", "reason"), [
    ("rate_limit", "rate_limit"),
    ("server_error", "server_error"),
    ("unavailable", "server_error"),
    ("reset", "connection"),
    ("malformed", "malformed_response"),
    ("truncated", "malformed_response"),
    ("empty_choices", "empty_response"),
    ("timeout", "timeout"),
])
def test_each_fault_is_classified_and_retries_are_bounded(client_for, fault, reason):
    with FakeOpenAIServer(faults=[fault] * 10, hang_s=2.0) as srv:
        client = client_for(srv, FR_LLM_MAX_RETRIES="2", FR_LLM_TIMEOUT_S="0.4")
        with pytest.raises(LLMCallError) as info:
            run(client.achat(ROLE, MSGS))
        assert info.value.reason == reason
        assert srv.request_count == 3  # first try + 2 retries, no hidden SDK retries
    ledger = client.ledger.summary()
    assert ledger["failures_by_reason"] == {reason: 1}
    assert ledger["retries"] == 2


def test_scripted_faults_then_success(client_for):
    with FakeOpenAIServer(faults=["rate_limit", "reset", "truncated"]) as srv:
        res = run(client_for(srv).achat(ROLE, MSGS))
        assert res.text and srv.request_count == 4
        assert srv.outcomes == ["rate_limit", "reset", "truncated", "ok"]


def test_probability_faults_are_seeded():
    def draws(seed):
        srv = FakeOpenAIServer(faults={"server_error": 0.3, "reset": 0.2}, seed=seed)
        return [srv._pick_fault({}, i) for i in range(200)]

    first = draws(1)
    assert first == draws(1) and first != draws(2)
    assert 30 < first.count("server_error") < 90 and 15 < first.count("reset") < 65


def test_unknown_fault_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown fault"):
        FakeOpenAIServer(faults={"explode": 0.5})


def test_request_budget_shuts_the_server_down(client_for):
    with FakeOpenAIServer(max_requests=2) as srv:
        client = client_for(srv, FR_LLM_MAX_RETRIES="0")
        results = client.chat_many(ROLE, [[{"role": "user", "content": f"q{i}"}]
                                          for i in range(4)])
        assert srv.request_count == 2 and srv.exhausted
    assert sum(isinstance(r, LLMCallError) for r in results) == 2
