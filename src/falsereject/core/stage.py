"""What every stage's `main()` shares: path flags, validated params, clean error exits."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from falsereject.core.config import ConfigError, Params, load_params

# Errors that mean "bad input or environment": reported in one clear message, exit code 2.
_USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError,)


def user_errors() -> tuple[type[BaseException], ...]:
    from falsereject.core.hub import HubUnavailableError
    from falsereject.core.io import InputError
    from falsereject.llm.cache import CacheError
    from falsereject.llm.local.engine import ModelUnavailableError

    extra: tuple[type[BaseException], ...] = (InputError, HubUnavailableError, CacheError,
                                              ModelUnavailableError)
    try:
        from falsereject.llm.client import MissingCredentialsError
        from falsereject.llm.errors import LLMOutageError

        extra += (MissingCredentialsError, LLMOutageError)
    except ImportError:
        pass
    return _USER_ERRORS + extra


def parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    ap.add_argument("--params", default="params.yaml")
    return ap


def params(path: str) -> Params:
    return load_params(path)


def entrypoint(main: Callable[[], None]) -> None:
    """Run a stage's main(); a user error prints one message (no traceback) and exits 2."""
    logging.basicConfig(level=os.environ.get("FR_LOG_LEVEL", "INFO"),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except user_errors() as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
