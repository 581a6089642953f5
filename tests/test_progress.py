"""Progress on stderr: a tqdm bar on a terminal, plain lines (done/total, rate, ETA) otherwise."""

from __future__ import annotations

import asyncio
import io
from types import SimpleNamespace

import pytest

from falsereject.core import progress
from falsereject.core.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_say_done_total_rate_and_eta(monkeypatch):
    clock = iter([100.0, 102.0, 104.0, 110.0, 110.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    with Progress("extract", 4, "seeds", stream=out, interval_s=1.0) as bar:
        bar.update()  # t=102: 1/4 in 2s
        bar.update()  # t=104: 2/4 in 4s
        bar.update(2)  # t=110: done (the end line, not a periodic one)
    lines = out.getvalue().splitlines()
    assert lines[0] == "extract: 4 seeds to do"
    assert lines[1] == "extract: 1/4 seeds (25%), 0.50 seeds/s, 2s elapsed, ETA 6s"
    assert lines[2] == "extract: 2/4 seeds (50%), 0.50 seeds/s, 4s elapsed, ETA 4s"
    assert lines[3] == "extract: 4/4 seeds (100%), 0.40 seeds/s, 10s elapsed"
    assert len(lines) == 4


def test_plain_lines_are_periodic_not_per_item():
    out = io.StringIO()
    with Progress("judge", 500, "verdicts", stream=out, interval_s=3600) as bar:
        for _ in range(500):
            bar.update()
    lines = out.getvalue().splitlines()
    assert lines[0] == "judge: 500 verdicts to do" and lines[-1].startswith("judge: 500/500")
    assert len(lines) == 2


def test_a_terminal_gets_a_tqdm_bar_with_rate_and_eta():
    out = Tty()
    with Progress("generate", 3, "candidates", stream=out) as bar:
        for _ in range(3):
            bar.update()
    text = out.getvalue()
    assert "generate" in text and "3/3" in text and "candidates/s" in text
    assert "to do" not in text  # no plain lines on a terminal


def test_gather_keeps_order_counts_every_item_and_propagates_errors(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(progress.sys, "stderr", out)

    async def item(i: int) -> int:
        await asyncio.sleep(0.001 * (5 - i))
        return i * i

    assert asyncio.run(progress.gather((item(i) for i in range(5)), "t", "rows")) == \
        [0, 1, 4, 9, 16]
    assert out.getvalue().splitlines()[-1].startswith("t: 5/5 rows (100%)")

    async def boom() -> None:
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        asyncio.run(progress.gather([item(1), boom()], "t", "rows"))


def test_interval_is_a_validated_setting(monkeypatch):
    from falsereject.core.config import ConfigError

    monkeypatch.setenv("FR_PROGRESS_INTERVAL_S", "5")
    assert Progress("x", 1, stream=io.StringIO()).interval_s == 5.0
    monkeypatch.setenv("FR_PROGRESS_INTERVAL_S", "0")
    with pytest.raises(ConfigError, match="FR_PROGRESS_INTERVAL_S"):
        Progress("x", 1, stream=io.StringIO())


def test_sft_reports_optimizer_steps(monkeypatch):
    from falsereject.training.trainer import progress_callback

    out = io.StringIO()
    monkeypatch.setattr(progress.sys, "stderr", out)
    cb = progress_callback()
    state = SimpleNamespace(is_world_process_zero=True, max_steps=3)
    cb.on_train_begin(None, state, None)
    for _ in range(3):
        cb.on_step_end(None, state, None)
    cb.on_train_end(None, state, None)
    lines = out.getvalue().splitlines()
    assert lines[0] == "sft: 3 steps to do" and lines[-1].startswith("sft: 3/3 steps (100%)")
