"""`python -m falsereject.evaluation answers.jsonl`: judge (prompt, response) rows, print the
class counts (see falsereject.evaluation.standalone)."""

from falsereject.evaluation.standalone import main

raise SystemExit(main())
