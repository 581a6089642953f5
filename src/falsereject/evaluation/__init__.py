"""Phase 4: benchmarks, the three-class judge, calibration, metrics and reports.

`judge_rows(rows, config="fast")` judges your own (prompt, response) rows without DVC; see
`falsereject.evaluation.standalone`."""


def judge_rows(*args, **kwargs):
    """See `falsereject.evaluation.standalone.judge_rows` (imported on first use)."""
    from falsereject.evaluation.standalone import judge_rows as _judge_rows

    return _judge_rows(*args, **kwargs)
