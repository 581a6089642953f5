"""LLM access for every stage: `from falsereject.llm import LLMClient`."""

from falsereject.llm.client import (
    ChatResult,
    LLMCallError,
    LLMClient,
    require_credentials,
    run,
)
from falsereject.llm.errors import LLMOutageError, MissingCredentialsError

__all__ = [
    "ChatResult",
    "LLMCallError",
    "LLMClient",
    "LLMOutageError",
    "MissingCredentialsError",
    "require_credentials",
    "run",
]
