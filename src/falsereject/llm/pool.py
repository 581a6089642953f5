"""Several client processes for one fan-out, sharing the disk cache.

One event loop spends ~3 ms of CPU per hosted call (most of it inside LiteLLM), so it tops
out near 300 calls/s on a free core. Past that, `ClientPool` splits a batch of chats over
`workers` spawned processes, each running its own `LLMClient` on its share of the
concurrency; they write the one disk cache (entries are atomic and carry their key, see
llm/cache.py) and their ledgers are merged into the pool's, so a stage reports one ledger.

    with ClientPool("generate", workers=2) as pool:        # or FR_LLM_WORKERS=2
        results = pool.chat_many(role, conversations, seed=1)
        pool.write_ledger(reports_dir)

Workers start once (spawn + LiteLLM import, ~5 s each) and serve every later batch. Worth it
only when one process is CPU-bound: high concurrency against fast, hosted or vLLM endpoints.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from falsereject.core import settings
from falsereject.core.config import RoleModel
from falsereject.llm.errors import LLMCallError
from falsereject.llm.ledger import Ledger


def _warm(_: int = 0) -> int:
    from falsereject.llm import client

    client._lite()  # LiteLLM's import, outside any timed batch
    import os

    return os.getpid()


def _shard(stage: str, role: dict, conversations: list, concurrency: int, use_cache: bool,
           kw: dict) -> tuple[list, Any, float]:
    """One worker's share: (results as plain tuples, ledger state, CPU seconds it took)."""
    from falsereject.llm.client import ChatResult, LLMClient

    cpu = time.process_time()
    client = LLMClient(stage, concurrency=concurrency, use_cache=use_cache)
    results = client.chat_many(RoleModel(**role), conversations, **kw)
    out = [("ok", asdict(r)) if isinstance(r, ChatResult)
           else ("err", r.reason, r.detail, r.model) for r in results]
    return out, client.ledger.state(), time.process_time() - cpu


class ClientPool:
    """`workers` client processes behind one `chat_many`; results in input order."""

    def __init__(self, stage: str, workers: int | None = None, *,
                 concurrency: int | None = None, use_cache: bool = True):
        env = settings.get()
        self.stage = stage
        self.workers = max(1, workers or env.llm_workers)
        self.concurrency = concurrency or env.llm_concurrency or 1
        self.use_cache = use_cache
        self.ledger = Ledger(stage)
        self.worker_cpu_s = 0.0  # CPU the workers spent on batches (for benchmarks)
        self._executor = ProcessPoolExecutor(self.workers,
                                             mp_context=multiprocessing.get_context("spawn"))
        self.pids = sorted(set(self._executor.map(_warm, range(self.workers))))

    def chat_many(self, role: RoleModel, conversations: Sequence[Sequence[dict]],
                  **kw: Any) -> list:
        from falsereject.llm.client import ChatResult

        n = len(conversations)
        w = max(1, min(self.workers, self.concurrency, n))  # every shard gets >= 1 slot
        per_worker = math.ceil(self.concurrency / w)
        futures = [self._executor.submit(_shard, self.stage, role.model_dump(),
                                         [list(c) for c in conversations[i::w]], per_worker,
                                         self.use_cache, kw) for i in range(w)]
        results: list = [None] * n
        for i, fut in enumerate(futures):
            shard, state, cpu = fut.result()
            self.ledger.absorb(state)
            self.worker_cpu_s += cpu
            for j, item in zip(range(i, n, w), shard, strict=True):
                results[j] = (ChatResult(**item[1]) if item[0] == "ok"
                              else LLMCallError(item[1], item[2], item[3]))
        return results

    def write_ledger(self, reports_dir: str | Path) -> dict[str, Any]:
        return self.ledger.write(Path(reports_dir) / "llm_ledger.json")

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
