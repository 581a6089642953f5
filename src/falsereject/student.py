"""The student model (conf/model/) as something the LLM client can serve: `local/<id>`.

`sft` trains on the student's weights; `eval` registers the base and fine-tuned students as
local models and talks to them through the same client (and the same batching) as any LLM.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .config import ModelConfig
from .hub import resolve_model_dir
from .localmodel import LocalSpec, register_local_model


def base_spec(cfg: ModelConfig) -> LocalSpec:
    """Where the base student's weights come from; fails fast with how to get a hub model."""
    if cfg.source == "gguf_package":
        return LocalSpec(gguf_package=cfg.gguf_package, gguf_file=cfg.gguf_file)
    return LocalSpec(path=str(resolve_model_dir(cfg)))


def _dir_hash(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def register_student(cfg: ModelConfig, adapter_dir: str | Path | None = None) -> str:
    """Register the base (or base + adapter) student; returns its LiteLLM model id.

    The id carries a content hash of the adapter so the LLM cache never serves answers of a
    previous fine-tune.
    """
    spec = base_spec(cfg)
    name = f"student-{cfg.name}"
    if adapter_dir is not None:
        adapter_dir = Path(adapter_dir)
        spec = LocalSpec(gguf_package=spec.gguf_package, gguf_file=spec.gguf_file,
                         path=spec.path, adapter_path=str(adapter_dir))
        name = f"{name}-sft-{_dir_hash(adapter_dir)}"
    register_local_model(name, spec)
    return f"local/{name}"
