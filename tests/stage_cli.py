"""Stage scripts are command-line programs, not a package: a test that drives a stage's `main()`
in-process (to use fakes or monkeypatches) loads the script from its path, as
`python stages/<name>.py` would, instead of importing `stages` through sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

STAGES = Path(__file__).resolve().parents[1] / "stages"


def load_stage(name: str) -> ModuleType:
    """A fresh module object of `stages/<name>.py` (its `main`, `__file__`, helpers)."""
    path = STAGES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"stage_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look a module up by name
    spec.loader.exec_module(module)
    return module
