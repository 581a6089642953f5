"""How many torch threads the embedded model gets: every core on an idle machine, one when other
work holds a core (`FR_TORCH_THREADS` overrides)."""

from __future__ import annotations

import logging
import os
import time

from falsereject.core import settings

log = logging.getLogger(__name__)

ENV_THREADS = "FR_TORCH_THREADS"


def idle_cores(sample_s: float = 0.3) -> float | None:
    """Cores idle right now, from two reads of /proc/stat `sample_s` apart (None off Linux).

    Not the load average: that still counts the stage DVC ran just before this one for a
    minute, so it would call an idle machine busy at the start of every stage.
    """
    def read() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields[:8])

    try:
        idle0, total0 = read()
        time.sleep(sample_s)
        idle1, total1 = read()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1
    if total1 <= total0:
        return float(cores)
    return cores * (idle1 - idle0) / (total1 - total0)


def torch_threads() -> int:
    """`FR_TORCH_THREADS`, or by default every core when the machine is idle and one when other
    work holds a core: on 2 shared cores, two torch threads that wait on each other for a CPU
    made batched decoding ~10x slower than one thread (measured with a load average of 6)."""
    fixed = settings.get().torch_threads
    if fixed is not None:
        return fixed
    cores = os.cpu_count() or 1
    free = idle_cores()
    if free is None:
        free = max(0.0, cores - os.getloadavg()[0])
    threads = cores if free > cores - 0.5 else 1
    log.info("torch threads: %d (%.1f of %d cores idle; set %s to override)",
             threads, free, cores, ENV_THREADS)
    return threads
