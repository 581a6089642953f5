"""Timings never go into tracked metrics: a stage script that measures time writes it to a
`timing.json` declared as an (uncached) out, so `dvc metrics diff` of two identical runs is
empty."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _outs(st: dict) -> list[str]:
    body = st.get("do", st)
    return [next(iter(o)) if isinstance(o, dict) else o
            for o in body.get("outs", []) + body.get("metrics", [])]


def test_every_stage_that_measures_time_declares_timing_json():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    missing = []
    for name, st in stages.items():
        script = ROOT / "stages" / f"{name}.py"
        text = script.read_text()
        if ("perf_counter" in text or "runtime_s" in text) and \
                not any(o.endswith("/timing.json") for o in _outs(st)):
            missing.append(name)
    assert missing == []

