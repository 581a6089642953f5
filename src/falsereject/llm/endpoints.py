"""Model ids served by an OpenAI-compatible server the process was told about at run time.

`register_endpoint("openai/student-smollm2", base, key)` makes every call to that model id go
to `base`, for roles that name no `api_base_env` (the student's role is built in code, not in
conf). Used for the student on vLLM (`llm/vllm_student.py`); the base URL and key come from the
environment there, so params never change with the backend.
"""

from __future__ import annotations

import threading

_ENDPOINTS: dict[str, tuple[str, str]] = {}
_LOCK = threading.Lock()


def register_endpoint(model: str, api_base: str, api_key: str) -> None:
    with _LOCK:
        _ENDPOINTS[model] = (api_base, api_key)


def served_endpoint(model: str) -> tuple[str, str] | None:
    """(api_base, api_key) registered for `model`, or None."""
    return _ENDPOINTS.get(model)
