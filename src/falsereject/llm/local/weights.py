"""Weights of the embedded models: find a GGUF inside its package, dequantize it once into the
model cache (safetensors), load model + tokenizer for batched generation."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from falsereject.core import settings
from falsereject.core.errors import UserError
from falsereject.llm.local.threads import torch_threads

log = logging.getLogger(__name__)

ENV_MODEL_CACHE = "FR_MODEL_CACHE_DIR"


class ModelUnavailableError(RuntimeError, UserError):
    """A model cannot be loaded here; the message says how to make it available."""


@dataclass(frozen=True)
class LocalSpec:
    """Where a local model's weights come from: a GGUF file inside a package, or a directory."""

    gguf_package: str | None = None
    gguf_file: str | None = None
    path: str | None = None
    adapter_path: str | None = None


_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (read from the flags; no torch import)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(f in flags for f in _BF16_CPU_FLAGS)
    return False


def local_dtype() -> str:
    """The embedded model's inference precision: FR_LOCAL_DTYPE, `auto` resolved by the CPU."""
    choice = settings.get().local_dtype
    if choice == "auto":
        return "bfloat16" if cpu_has_bf16() else "float32"
    return choice


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


def load(spec: LocalSpec, dtype: str | None = None):
    """(model, tokenizer) in eval mode, left padding for batched generation, in `dtype`
    (default: `local_dtype()`). An adapter is merged in float32 before the cast."""
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
    model = model.to(getattr(torch, dtype or local_dtype()))
    model.eval()
    return model, tok
