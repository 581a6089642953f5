"""A scripted stand-in for LLMClient (same `achat` signature) for extract/generate unit tests."""

from __future__ import annotations

from collections.abc import Callable

from falsereject.core.config import ExtractConfig, GenerateConfig, PoolMember, RoleModel
from falsereject.llm import ChatResult, LLMCallError

ROLE = RoleModel(model="fake/model", temperature=0.0, top_p=1.0, max_tokens=64,
                 api_base_env=None, api_key_env=None)


class FakeClient:
    """`script(role, messages, seed) -> str` plays every role; raise LLMCallError to fail a call.
    Every call is recorded in `calls` as (system prompt or "", last user message, seed)."""

    def __init__(self, script: Callable[[RoleModel, list[dict], int | None], str]):
        self.script = script
        self.calls: list[tuple[str, str, int | None]] = []

    async def achat(self, role, messages, *, json_schema=None, max_tokens=None,
                    temperature=None, seed=None) -> ChatResult:
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        self.calls.append((system, messages[-1]["content"], seed))
        text = self.script(role, list(messages), seed)
        return ChatResult(text=text, reasoning=None, finish_reason="stop", model=role.model,
                          prompt_tokens=10, completion_tokens=len(text.split()),
                          cost_usd=0.0, cached=False)


def failing(reason: str = "server_error"):
    def script(role, messages, seed):
        raise LLMCallError(reason, "boom", role.model)
    return script


def extract_cfg(**kw) -> ExtractConfig:
    base = {"k": 3, "retries": 1, "max_entities": 5, "max_relations": 3, "max_seeds": None,
            "entity_names": "grounded"}
    return ExtractConfig(**{**base, **kw})


def generate_cfg(**kw) -> GenerateConfig:
    base = {"n_candidates": 2, "max_iterations": 2, "retries": 1, "min_pool_refusals": 1,
            "max_prompt_chars": 200,
            "dedup": {"method": "ngram", "threshold": 0.9, "ngram_n": 2}}
    return GenerateConfig(**{**base, **kw})


def pool_members(terms_file: str | None = None, llm: bool = True) -> list[PoolMember]:
    out = []
    if llm:
        out.append(PoolMember(name="fake-llm", kind="llm", llm=ROLE))
    if terms_file:
        out.append(PoolMember(name="keywords", kind="lexical", llm=None))
    return out
