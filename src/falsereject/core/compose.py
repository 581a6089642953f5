"""Compose `params.yaml` from `conf/` with DVC's own Hydra composition, then validate it.

    python -m falsereject.core.compose                # write params.yaml
    python -m falsereject.core.compose model=qwen     # with overrides, like `dvc exp run -S`
    python -m falsereject.core.compose --check        # exit 1 if params.yaml is stale

`dvc exp run` recomposes params.yaml itself; plain `dvc repro` does not, so `make repro` runs
this first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from falsereject.core.config import ConfigError, validate


def compose(overrides: list[str] | None = None, conf_dir: str | Path = "conf") -> str:
    """The YAML text DVC would write for these overrides (validated); conf_dir is relative to
    the working directory, the repository root."""
    from dvc.utils.hydra import compose_and_dump

    conf_dir = Path(conf_dir).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.yaml"
        compose_and_dump(out, str(conf_dir), None, "config", str(conf_dir), overrides or [])
        text = out.read_text(encoding="utf-8")
    validate(yaml.safe_load(text), source=f"{conf_dir} composed with {overrides or []}")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=qwen")
    ap.add_argument("--out", default="params.yaml")
    ap.add_argument("--conf-dir", default="conf")
    ap.add_argument("--check", action="store_true", help="fail if --out differs")
    args = ap.parse_args(argv)
    try:
        text = compose(args.overrides, args.conf_dir)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # hydra's own errors name the bad override or key
        print(f"error: cannot compose conf/: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} is stale: run `make compose`", file=sys.stderr)
            return 1
        return 0
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
