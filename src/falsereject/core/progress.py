"""Progress of a long stage on stderr: items done / total, rate and ETA.

On a terminal it is a tqdm bar; otherwise (DVC piping a stage's output to a log, CI) a plain
line at the start, every `FR_PROGRESS_INTERVAL_S` seconds and at the end, such as

    extract: 12/22 seeds (55%), 0.81 seeds/s, 15s elapsed, ETA 12s

Stdout stays for each stage's one-line summary. Every long stage uses this one helper, through
`gather` (a drop-in for `asyncio.gather` over a list of awaitables) or `Progress` directly.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Iterable
from typing import Any, TextIO, TypeVar

from falsereject.core import settings

T = TypeVar("T")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m"


class Progress:
    """Counts items done out of `total`; `update()` after each one, `close()` at the end (or use
    it as a context manager)."""

    def __init__(self, desc: str, total: int, unit: str = "items", *,
                 stream: TextIO | None = None, interval_s: float | None = None,
                 bar: bool | None = None):
        self.desc, self.total, self.unit = desc, total, unit
        self.stream = stream or sys.stderr
        self.interval_s = (settings.get().progress_interval_s if interval_s is None
                           else interval_s)
        self.done = 0
        self._start = self._last = time.monotonic()
        self._closed = False
        use_bar = bar if bar is not None else _isatty(self.stream)
        self._bar: Any = None
        if use_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=self.stream,
                             mininterval=0.5, dynamic_ncols=True)
        elif total:
            self._write(f"{desc}: {total} {unit} to do")

    def line(self, now: float | None = None) -> str:
        """The plain progress line for the current state."""
        elapsed = (time.monotonic() if now is None else now) - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        text = (f"{self.desc}: {self.done}/{self.total} {self.unit}{pct}, "
                f"{rate:.2f} {self.unit}/s, {_duration(elapsed)} elapsed")
        if 0 < self.done < self.total and rate > 0:
            text += f", ETA {_duration((self.total - self.done) / rate)}"
        return text

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.interval_s and self.done < self.total:
            self._last = now
            self._write(self.line(now))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.total:
            self._write(self.line())

    def _write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


async def gather(aws: Iterable[Awaitable[T]], desc: str, unit: str = "items") -> list[T]:
    """`asyncio.gather` over `aws` (results in order; the first exception propagates), counting
    each one as it finishes."""
    items = list(aws)
    with Progress(desc, len(items), unit) as progress:
        async def one(aw: Awaitable[T]) -> T:
            try:
                return await aw
            finally:
                progress.update()

        return list(await asyncio.gather(*(one(a) for a in items)))
