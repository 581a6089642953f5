"""Hugging Face hub access with pinned revisions and errors that say how to work offline.

A hub model resolves to a local directory: the directory named by the model's
`local_dir_env` environment variable if set, else the hub snapshot at the pinned revision
(from the local HF cache when offline).
"""

from __future__ import annotations

import os
from pathlib import Path

from falsereject.core import settings
from falsereject.core.config import ModelConfig
from falsereject.core.errors import UserError


class HubUnavailableError(RuntimeError, UserError):
    pass


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def resolve_model_dir(cfg: ModelConfig) -> Path:
    """A local directory holding `cfg`'s weights and tokenizer, or a clear error."""
    path = settings.model_dir(cfg.local_dir_env)
    if path is not None:
        override = str(path)
        if not (path / "config.json").exists():
            raise HubUnavailableError(
                f"{cfg.local_dir_env}={override} does not hold a model (no config.json); point "
                f"it at a directory saved with save_pretrained() or a hub snapshot of "
                f"{cfg.hf_id}@{cfg.revision}"
            )
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(cfg.hf_id, revision=cfg.revision,
                                      local_files_only=_offline()))
    except Exception as err:  # noqa: BLE001 - every failure means "not available here"
        raise HubUnavailableError(
            f"model {cfg.hf_id}@{cfg.revision} (model={cfg.name}) is not available offline "
            f"({type(err).__name__}). Make it available by either\n"
            f"  - enabling hub access (unset HF_HUB_OFFLINE; gated models need HF_TOKEN), or\n"
            f"  - downloading it elsewhere (huggingface-cli download {cfg.hf_id} --revision "
            f"{cfg.revision} --local-dir DIR), copying DIR here and setting "
            f"{cfg.local_dir_env}=DIR"
        ) from None


def load_hf_dataset(hf_id: str, revision: str, split: str, name: str | None = None):
    """`datasets.load_dataset` at a pinned revision, or a clear error when the hub is out of reach."""
    try:
        import datasets

        return datasets.load_dataset(hf_id, name, revision=revision, split=split)
    except Exception as err:  # noqa: BLE001
        raise HubUnavailableError(
            f"dataset {hf_id}@{revision} (split {split}) is not available "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}). "
            "It needs hub access (unset HF_HUB_OFFLINE / HF_DATASETS_OFFLINE; gated sets need "
            "HF_TOKEN), or a local copy configured as a local-file source instead"
        ) from None
