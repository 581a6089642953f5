"""LLM access for every stage: `from falsereject.llm import LLMClient`."""

from .client import (
    ChatResult,
    LLMCallError,
    LLMClient,
    require_credentials,
    run,
)
from .errors import LLMOutageError, MissingCredentialsError

__all__ = [
    "ChatResult",
    "LLMCallError",
    "LLMClient",
    "LLMOutageError",
    "MissingCredentialsError",
    "require_credentials",
    "run",
]
