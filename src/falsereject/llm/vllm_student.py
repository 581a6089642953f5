"""The student answered by a vLLM OpenAI-compatible server instead of the in-process engine.

Chosen by the environment, so params (and so `dvc status`) never change with the backend:

    FR_STUDENT_BACKEND=vllm FR_STUDENT_VLLM_BASE=http://127.0.0.1:8000/v1 dvc repro eval

`register_student` (llm/local/student.py) then returns `openai/<name>` instead of
`local/<name>`, with the same names: `student-<model>` for the base and
`student-<model>-sft-<weights hash>` for a fine-tuned arm. The server serves the base under the
first name and each LoRA adapter under the second through vLLM's LoRA support; print the
matching arguments with

    python -m falsereject.llm.vllm_student --sft-root models/sft   # then: vllm serve <args>

A name the server does not serve stops the stage before any call (a stale adapter would
otherwise be answered by something else). A full fine-tune (`model/`, not an adapter) cannot
be attached to a running server: it stays on the in-process engine, with a warning. Answers
are cached under the `openai/` id, apart from the in-process engine's.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import threading
import urllib.error
import urllib.request
from pathlib import Path

from falsereject.core import settings
from falsereject.core.config import ConfigError
from falsereject.llm.endpoints import register_endpoint
from falsereject.llm.local.engine import LocalSpec, ModelUnavailableError

log = logging.getLogger(__name__)
PREFIX = "openai/"
_SERVED: dict[str, set[str]] = {}
_LOCK = threading.Lock()


def endpoint() -> tuple[str, str]:
    """(base URL, key) of the student's vLLM server, from FR_STUDENT_VLLM_BASE/_KEY."""
    env = settings.get()
    if not env.student_vllm_base:
        raise ConfigError("FR_STUDENT_BACKEND=vllm needs FR_STUDENT_VLLM_BASE (the server's "
                          "OpenAI base URL, e.g. http://127.0.0.1:8000/v1)")
    return env.student_vllm_base.rstrip("/"), env.student_vllm_key or "EMPTY"


def served_models(base: str, key: str) -> set[str]:
    """Model names the server lists at GET /models (asked once per process and server)."""
    with _LOCK:
        if base in _SERVED:
            return _SERVED[base]
    req = urllib.request.Request(f"{base}/models", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            names = {m["id"] for m in json.load(resp).get("data", [])}
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as err:
        raise ModelUnavailableError(
            f"cannot list the models of the student's vLLM server at {base} ({err}); start it "
            "(scripts/gpu_eval_vllm.sh) or unset FR_STUDENT_BACKEND") from None
    with _LOCK:
        _SERVED[base] = names
    return names


def register_vllm_student(spec: LocalSpec, name: str, *, full_finetune: bool) -> str | None:
    """`openai/<name>` served by the student's vLLM server; None for a full fine-tune (the
    caller serves it in-process)."""
    if full_finetune:
        log.warning("%s is a full fine-tune (%s): vLLM serves adapters on one base, so it is "
                    "answered by the in-process engine", name, spec.path)
        return None
    base, key = endpoint()
    served = served_models(base, key)
    if name not in served:
        raise ModelUnavailableError(
            f"the student's vLLM server at {base} does not serve {name!r} (it serves "
            f"{sorted(served)}); restart it with the arguments printed by `python -m "
            "falsereject.llm.vllm_student --sft-root models/sft` (an adapter's name carries "
            "the hash of its weights)")
    model_id = PREFIX + name
    register_endpoint(model_id, base, key)
    return model_id


def adapter_dirs(sft_root: str | Path) -> list[Path]:
    """Every `<arm>/` (or the root itself) under `sft_root` that holds a LoRA adapter."""
    root = Path(sft_root)
    dirs = [d for d in [root, *sorted(p for p in root.iterdir() if p.is_dir())]
            if (d / "adapter" / "adapter_config.json").exists()] if root.is_dir() else []
    return dirs


def serve_args(cfg, sft_root: str | Path | None, *, base_dir: str | None = None) -> list[str]:
    """`vllm serve` arguments serving the base student and every adapter under `sft_root` under
    the names `register_student` asks for. `base_dir`: the base weights' HF directory
    (default: resolved like the in-process engine does, dequantizing a GGUF once)."""
    from falsereject.llm.local.engine import weights_dir
    from falsereject.llm.local.student import base_spec, student_spec

    base_name = student_spec(cfg, None)[1]
    args = [str(base_dir or weights_dir(base_spec(cfg))), "--served-model-name", base_name]
    adapters = []
    for d in adapter_dirs(sft_root) if sft_root else []:
        spec, name = student_spec(cfg, d)
        rank = json.loads((d / "adapter" / "adapter_config.json").read_text()).get("r", 16)
        adapters.append((name, spec.adapter_path, int(rank)))
    if adapters:
        args += ["--enable-lora", "--max-loras", str(len(adapters)),
                 "--max-lora-rank", str(max(16, *(r for *_, r in adapters))),
                 "--lora-modules", *(f"{n}={p}" for n, p, _ in adapters)]
    return args


def main() -> None:
    from falsereject.core.config import load_params

    ap = argparse.ArgumentParser(description="print `vllm serve` arguments for the student")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--sft-root", default="models/sft", help="folder of fine-tuned arms")
    ap.add_argument("--base-dir", help="HF directory of the base weights (default: resolved)")
    args = ap.parse_args()
    p = load_params(args.params)
    print(shlex.join(serve_args(p.model, args.sft_root, base_dir=args.base_dir)))


if __name__ == "__main__":
    main()
