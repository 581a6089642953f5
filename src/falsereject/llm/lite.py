"""LiteLLM, imported once, lazily, by the first call that needs it: the only module of the
pipeline that imports it. It registers the embedded models' `local/` provider and keeps
third-party loggers quiet."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from falsereject.llm.local_provider import local_provider

_LITELLM: Any = None
_LITELLM_LOCK = threading.Lock()


def lite() -> Any:
    """LiteLLM, imported and set up by the first call that needs it.

    Importing it takes about 5 s here; a stage whose every answer is in the cache never does.
    """
    global _LITELLM
    if _LITELLM is not None:
        return _LITELLM
    with _LITELLM_LOCK:
        if _LITELLM is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.suppress_debug_info = True
            litellm.drop_params = True  # e.g. `seed` for providers without it
            litellm.telemetry = False
            litellm.custom_provider_map = [
                m for m in (litellm.custom_provider_map or []) if m.get("provider") != "local"
            ] + [{"provider": "local", "custom_handler": local_provider(litellm)}]
            litellm.utils.custom_llm_setup()
            _quiet_loggers()  # again: LiteLLM sets its loggers' levels at import
            _LITELLM = litellm
    return _LITELLM


# Quiet third-party loggers even under FR_LOG_LEVEL=DEBUG: their debug output can carry
# request headers, and so API keys.
def _quiet_loggers() -> None:
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "openai",
                 "aiohttp", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


_quiet_loggers()


class _DropLoopChangeNotice(logging.Filter):
    """Each `run()` starts a new event loop by design; LiteLLM warns about that every time."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "event loop changed" not in record.getMessage()


logging.getLogger("LiteLLM").addFilter(_DropLoopChangeNotice())
