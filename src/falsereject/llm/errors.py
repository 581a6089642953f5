"""Errors of the LLM client, and the helpers that keep secrets out of their messages."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from falsereject.core.errors import UserError

if TYPE_CHECKING:
    from falsereject.core.config import RoleModel


class LLMCallError(RuntimeError):
    """A call that failed for good (after bounded retries); `reason` is a short category.

    Stages record these per row (`achat_many` returns them in place) instead of crashing.
    """

    def __init__(self, reason: str, message: str, model: str):
        super().__init__(f"{model}: {reason}: {message}")
        self.reason = reason
        self.detail = message
        self.model = model


class MissingCredentialsError(RuntimeError, UserError):
    """A configured role needs an environment variable that is not set."""


class LLMOutageError(RuntimeError, UserError):
    """The endpoint looks down or misconfigured: too many calls in a row failed for good.

    Raised instead of recording every remaining row as failed, so a broken key or a dead
    server stops the stage early; completed calls stay in the cache and a re-run resumes.
    """


# Anything shaped like a bearer token or API key, in case a provider echoes one back.
_KEYLIKE = re.compile(r"\b(sk|pk|rk|hf|gsk|xai|AKIA)[-_A-Za-z0-9]{12,}\b")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (and anything key-shaped) replaced by `***`."""
    for value in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, "***")
    return _KEYLIKE.sub("***", text)


def secret_values(env_names: Iterable[str | None]) -> list[str]:
    """Current values of the named environment variables (unset ones skipped)."""
    return [v for name in env_names if name and (v := os.environ.get(name))]


def retry_after_s(err: BaseException) -> float | None:
    """The server's Retry-After hint in seconds, if the error carries one."""
    for holder in (getattr(err, "response", None), err):
        headers = getattr(holder, "headers", None) or getattr(
            holder, "litellm_response_headers", None
        )
        if headers is None:
            continue
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
        except AttributeError:
            continue
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def require_credentials(roles: Iterable[RoleModel]) -> None:
    """Fail before any call when a role needs an environment variable that is not set."""
    missing: dict[str, list[str]] = {}
    for role in roles:
        envs = role.env_names() if hasattr(role, "env_names") else (role.api_key_env,
                                                                    role.api_base_env)
        for var in envs:  # a routed role: every deployment's variables
            if var and not os.environ.get(var):
                missing.setdefault(var, []).append(role.model)
    if missing:
        lines = [f"  {var} (needed by {', '.join(sorted(set(models)))})"
                 for var, models in sorted(missing.items())]
        raise MissingCredentialsError(
            "missing environment variables for the configured LLM roles:\n" + "\n".join(lines)
        )


# --- classification of call failures --------------------------------------------------------

_MALFORMED = re.compile(r"Expecting (value|property name|',' delimiter|':' delimiter)|"
                        r"Unterminated string|Extra data|Invalid control character|"
                        r"JSONDecodeError|validation error", re.I)
_CONNECTION = re.compile(r"Connection error|connection (reset|refused|aborted)|"
                         r"Server disconnected|RemoteProtocolError|ReadError", re.I)


def classify(err: BaseException) -> tuple[str, bool]:
    """(reason, transient) for an exception raised by a call."""
    if isinstance(err, LLMCallError):
        return err.reason, err.reason in {"malformed_response", "empty_response"}
    from falsereject.llm.lite import lite

    litellm = lite()
    if isinstance(err, litellm.RateLimitError):
        return "rate_limit", True
    if isinstance(err, (litellm.Timeout, asyncio.TimeoutError, TimeoutError)):
        return "timeout", True
    if isinstance(err, (litellm.ServiceUnavailableError, litellm.InternalServerError,
                        litellm.BadGatewayError)):
        # LiteLLM reports a dropped connection or an unparseable 200 body as a 500 too
        text = str(err)
        if _MALFORMED.search(text):
            return "malformed_response", True
        if _CONNECTION.search(text):
            return "connection", True
        return "server_error", True
    if isinstance(err, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return "auth", False
    if isinstance(err, litellm.ContextWindowExceededError):
        return "context_window", False
    if isinstance(err, litellm.ContentPolicyViolationError):
        return "content_filter", False
    if isinstance(err, litellm.NotFoundError):
        return "not_found", False
    if isinstance(err, (litellm.BadRequestError, litellm.UnprocessableEntityError)):
        return "bad_request", False
    if isinstance(err, litellm.APIConnectionError):
        text = str(err).lower()
        if "json" in text or "decode" in text or "validation" in text:
            return "malformed_response", True
        return "connection", True
    if isinstance(err, (json.JSONDecodeError, ValueError, KeyError, IndexError, TypeError)):
        return "malformed_response", True
    if isinstance(err, litellm.APIError):
        status = getattr(err, "status_code", None) or 500
        return ("server_error", True) if status >= 500 else ("bad_request", False)
    if isinstance(err, (ConnectionError, OSError)):
        return "connection", True
    return "other", False
