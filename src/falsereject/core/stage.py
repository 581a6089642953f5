"""What every stage's `main()` shares: path flags, validated params, clean error exits."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from falsereject.core import settings
from falsereject.core.config import ConfigError, Params, load_params
from falsereject.core.errors import UserError


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "bad input or environment": one clear message, exit code 2."""
    return (UserError,)


def parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    ap.add_argument("--params", default="params.yaml")
    return ap


def params(path: str) -> Params:
    return load_params(path)


def entrypoint(main: Callable[[], None]) -> None:
    """Run a stage's main(); a user error prints one message (no traceback) and exits 2.

    Every `FR_*` environment setting is validated first, whether this stage reads it or not."""
    try:
        level = settings.get().log_level
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings.check()
        main()
    except user_errors() as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
