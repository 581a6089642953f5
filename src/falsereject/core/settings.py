"""Machine settings from the environment (`FR_*`), read in one place and validated.

Throughput, caches and logging are settings of the machine, not of the experiment: they come
from the environment, never from params, so changing one never reruns a stage. Every `FR_*`
variable the pipeline reads is a field here; a bad value of any of them stops the stage with a
`ConfigError` naming the variable (a stage validates them all at start, see `core.stage`).
An empty variable counts as unset.

Default cache folders live in the repository's `.cache/`. A queued or temporary experiment
(`dvc exp run --temp`, `--queue` + `dvc queue start`) runs in a copy under
`<repo>/.dvc/tmp/exps/...`; its default caches resolve to the main repository's `.cache/`, so
every experiment of one repository shares the LLM answers and the dequantized model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from falsereject.core.config import ConfigError

PREFIX = "FR_"
# Per-model directories named by `conf/model/*.yaml` (`local_dir_env`), not fixed fields.
MODEL_DIR_PREFIX = "FR_MODEL_DIR_"
# DVC runs temporary and queued experiments in <repo>/.dvc/tmp/exps/<tmp dir>.
_EXPS_PARTS = (".dvc", "tmp", "exps")

log = logging.getLogger(__name__)


class Settings(BaseSettings):
    """Every `FR_*` variable: the field `llm_concurrency` is `FR_LLM_CONCURRENCY`."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore",
                                      frozen=True)

    log_level: str = "INFO"
    # seconds between plain progress lines when stderr is not a terminal (core.progress)
    progress_interval_s: float = Field(30.0, gt=0)
    # caches (None: <main repository>/.cache/<name>)
    llm_cache_dir: Path | None = None
    model_cache_dir: Path | None = None
    benchmark_cache_dir: Path | None = None
    # sentence-embedding vectors (None: the `embeddings` folder of the LLM cache)
    embedding_cache_dir: Path | None = None
    # the LLM client
    llm_concurrency: int = Field(16, ge=0)  # 0 counts as 1
    llm_timeout_s: float = Field(120.0, ge=0)
    llm_max_retries: int = Field(4, ge=0)
    llm_backoff_s: float = Field(1.0, ge=0)
    llm_backoff_cap_s: float = Field(30.0, ge=0)
    llm_max_consecutive_failures: int = Field(20, ge=0)  # 0 disables the outage stop
    llm_workers: int = Field(1, ge=1)  # client processes of an llm.pool.ClientPool
    # hosted calls of one client start at least this far apart (llm.policy.Pacer); 0: off
    llm_start_interval_ms: float = Field(2.0, ge=0)
    # the embedded model
    local_batch_size: int = Field(32, ge=0)  # 0 counts as 1
    local_batch_wait_ms: float = Field(30.0, ge=0)
    local_timeout_s: float = Field(0.0, ge=0)  # 0: no timeout
    torch_threads: int | None = Field(None, ge=1)  # None: every idle core
    # precision of the embedded model's inference: auto = bfloat16 where the CPU computes it
    # natively (AVX512-BF16 / AMX; measured 2.5x the tokens/s of float32 here), else float32.
    # It changes the answers, so it is part of every local answer's cache key.
    local_dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    # fine-tuning
    sft_micro_batch: int | None = Field(None, ge=1)  # None: 4 on CPU, 32 on GPU
    # who answers for the student in eval: the in-process engine, or a vLLM server serving the
    # base student and the LoRA adapters (llm/vllm_student.py); params never change with it
    student_backend: Literal["local", "vllm"] = "local"
    student_vllm_base: str | None = None  # e.g. http://127.0.0.1:8000/v1
    student_vllm_key: str | None = None  # if the server was started with --api-key

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    def cache_dir(self, name: str) -> Path:
        """The `name` cache folder (`llm`, `models`, `benchmarks`, `embeddings`): the variable,
        or the main repository's `.cache/<name>` (embeddings: the LLM cache's `embeddings/`)."""
        if name == "embeddings":
            return self.embedding_cache_dir or self.cache_dir("llm") / "embeddings"
        override = {"llm": self.llm_cache_dir, "models": self.model_cache_dir,
                    "benchmarks": self.benchmark_cache_dir}[name]
        return override if override is not None else main_repo_root() / ".cache" / name


def main_repo_root(cwd: str | Path | None = None) -> Path:
    """The repository a stage belongs to: `cwd` itself, or, inside a DVC temporary/queued
    experiment copy (`<repo>/.dvc/tmp/exps/...`), the repository that holds that copy."""
    path = Path(cwd or os.getcwd()).resolve()
    parts = path.parts
    for i in range(len(parts) - len(_EXPS_PARTS) + 1):
        if parts[i:i + len(_EXPS_PARTS)] == _EXPS_PARTS:
            return Path(*parts[:i])
    return path


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        var = PREFIX + field.upper()
        raw = os.environ.get(var)
        lines.append(f"environment variable {var}={raw!r}: {e['msg']}")
    return "; ".join(lines)


def get() -> Settings:
    """The current settings (read afresh: tests and callers may change the environment)."""
    try:
        return Settings()
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None


def unknown_variables() -> list[str]:
    """`FR_*` variables set in the environment that no setting reads (probably typos)."""
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(v for v in os.environ
                  if v.startswith(PREFIX) and v not in known and not v.startswith(MODEL_DIR_PREFIX))


def check() -> Settings:
    """Validate every setting at stage start; warn about `FR_*` names nothing reads."""
    settings = get()
    unknown = unknown_variables()
    if unknown:
        log.warning("environment variables not read by any setting (typo?): %s",
                    ", ".join(unknown))
    return settings


def model_dir(env_name: str) -> Path | None:
    """The directory a model's `local_dir_env` variable (e.g. `FR_MODEL_DIR_QWEN`) names."""
    raw = os.environ.get(env_name, "").strip()
    return Path(raw) if raw else None
