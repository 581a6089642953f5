"""The student model (conf/model/) as something the LLM client can serve: `local/<id>`.

`sft` trains on the student's weights; `eval` registers the base and fine-tuned students as
local models and talks to them through the same client (and the same batching) as any LLM.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from falsereject.core import settings
from falsereject.core.config import ModelConfig
from falsereject.core.hub import resolve_model_dir
from falsereject.llm.local.engine import LocalSpec, register_local_model


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


def sft_spec(cfg: ModelConfig, sft_dir: str | Path) -> LocalSpec:
    """The fine-tuned student in `sft_dir`: `adapter/` (LoRA on the base) or `model/` (full)."""
    sft_dir = Path(sft_dir)
    if (sft_dir / "adapter" / "adapter_config.json").exists():
        base = base_spec(cfg)
        return LocalSpec(gguf_package=base.gguf_package, gguf_file=base.gguf_file,
                         path=base.path, adapter_path=str(sft_dir / "adapter"))
    if (sft_dir / "model" / "config.json").exists():
        return LocalSpec(path=str(sft_dir / "model"))
    raise FileNotFoundError(f"{sft_dir}: neither adapter/adapter_config.json nor model/config.json")


def student_spec(cfg: ModelConfig, sft_dir: str | Path | None = None) -> tuple[LocalSpec, str]:
    """(weights, served name) of the base student, or of the fine-tuned one in `sft_dir`.

    A fine-tuned name carries a content hash of its weights so the LLM cache never serves the
    answers of a previous fine-tune.
    """
    if sft_dir is None:
        return base_spec(cfg), f"student-{cfg.name}"
    spec = sft_spec(cfg, sft_dir)
    weights = Path(spec.adapter_path or spec.path or "")
    return spec, f"student-{cfg.name}-sft-{_dir_hash(weights)}"


def register_student(cfg: ModelConfig, sft_dir: str | Path | None = None) -> str:
    """Register the base student, or the fine-tuned one in `sft_dir`; returns its model id:
    `local/<name>` on the in-process engine, or `openai/<name>` on the student's vLLM server
    when FR_STUDENT_BACKEND=vllm (llm/vllm_student.py)."""
    spec, name = student_spec(cfg, sft_dir)
    if settings.get().student_backend == "vllm":
        from falsereject.llm.vllm_student import register_vllm_student

        model_id = register_vllm_student(spec, name, full_finetune=sft_dir is not None
                                         and spec.adapter_path is None)
        if model_id is not None:
            return model_id
    register_local_model(name, spec)
    return f"local/{name}"
