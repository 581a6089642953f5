"""Fakes shared by the evaluation tests: an LLM client with `achat`, a config builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from falsereject.core.config import JudgeConfig, RoleModel
from falsereject.core.templates import parse_template


@dataclass(frozen=True)
class FakeResult:
    text: str
    reasoning: str | None = None
    finish_reason: str = "stop"
    cached: bool = False


class FakeClient:
    """`achat` like LLMClient's; `respond(role, messages, json_schema)` returns text or raises."""

    def __init__(self, respond: Callable[[RoleModel, list[dict], dict | None], Any]):
        self.respond = respond
        self.calls: list[tuple[str, list[dict], dict | None]] = []

    async def achat(self, role, messages, *, json_schema=None, max_tokens=None,
                    temperature=None, seed=None):
        self.calls.append((role.model, list(messages), json_schema))
        out = self.respond(role, list(messages), json_schema)
        if isinstance(out, BaseException):
            raise out
        return out if isinstance(out, FakeResult) else FakeResult(out)


def role(model: str = "fake/judge") -> RoleModel:
    return RoleModel(model=model, temperature=0.0, top_p=1.0, max_tokens=48,
                     api_base_env=None, api_key_env=None)


def judge_cfg(**kw: Any) -> JudgeConfig:
    base = {"name": "cascade", "mode": "cascade",
            "fast_accept": ["refusal", "partial", "compliance"], "prompt": "compact_v1",
            "output_format": "brackets", "max_response_chars": 600, "min_kappa": 0.6,
            "model": None}
    return JudgeConfig(**{**base, **kw})


TEMPLATE = parse_template('user: "Judge this.\\nPROMPT: $prompt\\nRESPONSE: $response\\nCLASS:"')
