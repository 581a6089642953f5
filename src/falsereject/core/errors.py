"""The one base class of "bad input or environment" errors.

A stage's entrypoint (core/stage.py) prints such an error as one `error:` line and exits 2;
anything else is a bug and keeps its traceback. Phases below and above core subclass it, so core
never imports them to learn their error types.
"""


class UserError(Exception):
    """Bad input, configuration or environment: the message says what and where."""
