"""The judge on your own data, without DVC or params.yaml.

    from falsereject.evaluation import judge_rows
    verdicts = judge_rows([{"prompt": "How do I kill a Python process?",
                            "response": "Run `kill <PID>`."}])          # judge option `fast`
    verdicts[0]["verdict"]   # 'full_compliance'

`config` names an option of the `judge` config group (`fast`, `cascade`, `paper`: read from
conf/judge/ of this repository), or is a path to such a YAML file, or a `JudgeConfig`. The LLM
judge (modes `cascade` and `llm`) decides rows only when `calibration` (calibrate's metrics.json,
as a path or a dict) shows its kappa at or above the option's `min_kappa`; without it the rows
the fast path cannot decide are `undetermined`, as in the pipeline. `role` is the LiteLLM model
of the LLM judge when the option names none (the pipeline uses `llm.roles.judge`).

Command line (prints the class counts; `--out` writes one verdict per row as JSONL):

    python -m falsereject.evaluation answers.jsonl [--judge fast] [--calibration FILE] [--out F]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from falsereject.core.config import JudgeConfig, RoleModel, validate_section
from falsereject.core.io import InputError, read_json, read_jsonl_numbered
from falsereject.evaluation.judge import REPO, VERDICTS, Judge, llm_gate, load_template

CONF_DIR = REPO / "conf" / "judge"
PROMPTS_DIR = REPO / "prompts" / "judge"


def load_judge_config(config: str | Path | JudgeConfig) -> JudgeConfig:
    """A `JudgeConfig` from an option name of conf/judge/, a YAML path, or itself."""
    if isinstance(config, JudgeConfig):
        return config
    path = Path(config)
    if path.suffix not in (".yaml", ".yml"):
        path = CONF_DIR / f"{config}.yaml"
        if not path.exists():
            options = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
            raise InputError(f"no judge option {config!r}; options: {options}")
    with path.open(encoding="utf-8") as fh:
        return validate_section(JudgeConfig, yaml.safe_load(fh), str(path))


def judge_rows(rows: Iterable[Mapping[str, Any]], config: str | Path | JudgeConfig = "fast", *,
               calibration: str | Path | Mapping[str, Any] | None = None,
               role: RoleModel | None = None, client: Any = None,
               prompts_dir: str | Path = PROMPTS_DIR) -> list[dict[str, Any]]:
    """One verdict per row of (`prompt`, `response`[, `id`]): the row's id, `verdict` (one of
    the three classes or `undetermined`), `route` (fast / llm / none), `rule` and `judge_id`."""
    cfg = load_judge_config(config)
    metrics = read_json(calibration) if isinstance(calibration, str | Path) else calibration
    allowed, _ = llm_gate(cfg, (metrics or {}).get("llm_gate_kappa"), "the calibration file")
    role = cfg.model or role
    if allowed and role is None:
        raise InputError(f"judge {cfg.name!r} needs an LLM: pass role=RoleModel(...)")
    template = load_template(prompts_dir, cfg.prompt) if allowed else None
    if allowed and client is None:
        from falsereject.llm import LLMClient, require_credentials

        require_credentials([role])
        client = LLMClient("judge")
    judge = Judge(cfg, role, template, client, llm_allowed=allowed)
    rows = list(rows)
    for n, r in enumerate(rows, 1):
        if not isinstance(r.get("prompt"), str) or not isinstance(r.get("response"), str):
            raise InputError(f"row {n}: needs string fields `prompt` and `response`")
    from falsereject.llm import run

    verdicts = run(judge.ajudge_many([(r["prompt"], r["response"], True) for r in rows]))
    return [{"id": r.get("id", n), **v.to_dict()} for n, (r, v)
            in enumerate(zip(rows, verdicts, strict=True), 1)]


def class_counts(verdicts: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(v["verdict"] for v in verdicts)
    return {c: counts[c] for c in VERDICTS}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from falsereject.core.errors import UserError
    from falsereject.core.io import write_jsonl

    ap = argparse.ArgumentParser(prog="python -m falsereject.evaluation",
                                 description="Judge a JSONL of (prompt, response) rows and print "
                                             "the class counts.")
    ap.add_argument("file", help="JSONL, one object per line with `prompt` and `response`")
    ap.add_argument("--judge", default="fast", help="judge option (fast, cascade, paper) or a "
                                                    "YAML path (default: fast)")
    ap.add_argument("--calibration", default=None,
                    help="calibrate's metrics.json: lets a well-calibrated LLM judge decide rows")
    ap.add_argument("--out", default=None, help="write one verdict per row here (JSONL)")
    args = ap.parse_args(argv)
    try:
        rows = []
        for n, rec in read_jsonl_numbered(args.file):
            if not isinstance(rec.get("prompt"), str) or not isinstance(rec.get("response"), str):
                raise InputError(f"{args.file}:{n}: needs string fields `prompt` and `response`")
            rows.append({"id": rec.get("id", f"row-{n}"), **rec})
        verdicts = judge_rows(rows, args.judge, calibration=args.calibration)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        write_jsonl(args.out, verdicts)
    counts = class_counts(verdicts)
    width = max(len(c) for c in counts)
    for c, k in counts.items():
        print(f"{c:{width}s} {k:6d} {k / max(1, len(verdicts)):7.1%}")
    print(f"{'total':{width}s} {len(verdicts):6d}")
    return 0
