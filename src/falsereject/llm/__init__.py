"""LLM access for every stage: `from falsereject.llm import LLMClient`."""

from .client import (
    ChatResult,
    LLMCallError,
    LLMClient,
    MissingCredentialsError,
    require_credentials,
    run,
)

__all__ = [
    "ChatResult",
    "LLMCallError",
    "LLMClient",
    "MissingCredentialsError",
    "require_credentials",
    "run",
]
