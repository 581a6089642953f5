"""The batching engine: one loaded model and a worker thread that runs queued requests in
batches (JSON-schema grammars via xgrammar, seeded sampling via SeededSampler)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from falsereject.core import settings
from falsereject.llm.local.sampler import SeededSampler
from falsereject.llm.local.weights import LocalSpec, load

log = logging.getLogger(__name__)

REPETITION_PENALTY = 1.2  # greedy decoding of SmolLM2 loops without it
ENV_BATCH = "FR_LOCAL_BATCH_SIZE"
ENV_WAIT_MS = "FR_LOCAL_BATCH_WAIT_MS"


@dataclass(frozen=True)
class GenRequest:
    messages: tuple[tuple[str, str], ...]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    json_schema: str | None = None  # canonical JSON text of the schema

    @staticmethod
    def build(messages: list[dict[str, Any]], *, max_tokens: int, temperature: float = 0.0,
              top_p: float = 1.0, seed: int | None = None,
              json_schema: dict | None = None) -> GenRequest:
        msgs = tuple((str(m["role"]), str(m.get("content") or "")) for m in messages)
        schema = json.dumps(json_schema, sort_keys=True) if json_schema else None
        return GenRequest(msgs, int(max_tokens), float(temperature), float(top_p),
                          int(seed or 0), schema)

    def group(self) -> tuple:
        # Requests with different schemas share a batch (one grammar per row), so calls whose
        # schema depends on their input (e.g. an enum of the prompt's words) still batch.
        sampling = self.temperature > 0
        return (self.json_schema is not None, sampling, self.temperature if sampling else 0.0,
                self.top_p if sampling else 1.0)


@dataclass
class GenResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


@dataclass
class _Job:
    req: GenRequest
    future: Future = field(default_factory=Future)


class Engine:
    """One loaded model plus a worker thread that batches queued requests."""

    def __init__(self, name: str, spec: LocalSpec, batch_size: int | None = None,
                 wait_ms: float | None = None):
        self.name = name
        self.spec = spec
        env = settings.get()
        self.batch_size = batch_size or env.local_batch_size or 1
        self.wait_s = (wait_ms if wait_ms is not None else env.local_batch_wait_ms) / 1000.0
        self.model, self.tok = load(spec)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._compiler = None
        self._grammars: dict[str, Any] = {}
        self.batches_run = 0
        self._thread = threading.Thread(target=self._loop, name=f"engine-{name}", daemon=True)
        self._thread.start()

    def submit(self, req: GenRequest) -> Future:
        job = _Job(req)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        pending: list[_Job] = []
        while True:
            if not pending:
                job = self._queue.get()
                if job is None:
                    return
                pending.append(job)
            deadline = time.monotonic() + self.wait_s
            while len(pending) < self.batch_size * 4:
                timeout = deadline - time.monotonic()
                try:
                    job = self._queue.get(timeout=max(timeout, 0)) if timeout > 0 \
                        else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)
                    break
                pending.append(job)
            # Run the largest compatible group first; the rest waits for the next round.
            key = pending[0].req.group()
            batch = [j for j in pending if j.req.group() == key][: self.batch_size]
            pending = [j for j in pending if j not in batch]
            live = [j for j in batch if j.future.set_running_or_notify_cancel()]
            if not live:
                continue
            self._run_batch(live)

    def _run_batch(self, jobs: list[_Job]) -> None:
        try:
            results = self.generate([j.req for j in jobs])
        except BaseException as err:  # noqa: BLE001 - surfaced to the waiters; keep serving
            if len(jobs) == 1:
                jobs[0].future.set_exception(err)
                return
            # one bad request must not fail its batch neighbours: isolate it
            log.warning("batch of %d failed (%s); running its requests one by one",
                        len(jobs), type(err).__name__)
            for j in jobs:
                self._run_batch([j])
            return
        for j, r in zip(jobs, results, strict=True):
            j.future.set_result(r)

    def _json_processor(self, schema_texts: list[str]):
        """A fresh (stateful) logits processor constraining row i to schema_texts[i]."""
        import xgrammar as xgr

        if self._compiler is None:
            info = xgr.TokenizerInfo.from_huggingface(
                self.tok, vocab_size=self.model.config.vocab_size
            )
            self._compiler = xgr.GrammarCompiler(info)
        grammars = []
        for schema_text in schema_texts:
            grammar = self._grammars.get(schema_text)
            if grammar is None:
                # compact JSON: free whitespace lets a small model spend its token budget on
                # indentation (measured: SmolLM2 wrote 100+ whitespace tokens per answer)
                grammar = self._grammars[schema_text] = self._compiler.compile_json_schema(
                    schema_text, any_whitespace=False)
            grammars.append(grammar)
        return xgr.contrib.hf.LogitsProcessor(grammars)

    def generate(self, reqs: list[GenRequest]) -> list[GenResult]:
        import torch

        self.batches_run += 1
        first = reqs[0]
        prompts = [
            self.tok.apply_chat_template(
                [{"role": r, "content": c} for r, c in req.messages],
                tokenize=False, add_generation_prompt=True,
            )
            for req in reqs
        ]
        enc = self.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        max_new = max(r.max_tokens for r in reqs)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "repetition_penalty": REPETITION_PENALTY,
            "pad_token_id": self.tok.pad_token_id,
            "eos_token_id": self.tok.eos_token_id,
        }
        # Decoding is "greedy" either way; sampling happens in SeededSampler, whose noise
        # depends only on each row's own seed and step, so a request gets the same sample
        # whichever requests share its batch (a resumed stage matches an uninterrupted one).
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        processors: list[Any] = []
        if first.json_schema:
            processors.append(self._json_processor([r.json_schema for r in reqs]))
        if first.temperature > 0:
            processors.append(SeededSampler([r.seed for r in reqs], first.temperature,
                                            first.top_p))
        if processors:
            kwargs["logits_processor"] = processors
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        results = []
        for i, req in enumerate(reqs):
            ids = new[i].tolist()
            prompt_len = int(enc["attention_mask"][i].sum())
            finish = "length"
            if self.tok.eos_token_id in ids:
                ids = ids[: ids.index(self.tok.eos_token_id)]
                finish = "stop"
            if len(ids) > req.max_tokens:
                ids, finish = ids[: req.max_tokens], "length"
            elif len(ids) == req.max_tokens and finish != "stop":
                finish = "length"
            text = self.tok.decode(ids, skip_special_tokens=True).strip()
            results.append(GenResult(text, prompt_len, len(ids), finish))
        return results
