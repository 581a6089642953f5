"""Embedded local models served in-process (`local/<name>`); see `engine` for the parts."""

from falsereject.llm.local.engine import (
    Engine,
    GenRequest,
    GenResult,
    LocalSpec,
    ModelUnavailableError,
    get_engine,
    load,
    register_local_model,
    torch_threads,
    weights_dir,
)

__all__ = ["Engine", "GenRequest", "GenResult", "LocalSpec", "ModelUnavailableError",
           "get_engine", "load", "register_local_model", "torch_threads", "weights_dir"]
