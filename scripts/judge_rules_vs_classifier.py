"""Rules vs a small classifier for the judge's three-class fast path, on the DEVELOPMENT file.

The comparison behind the choice documented in src/falsereject/evaluation/fastpath.py: the rules
(in-sample: they were written on this file), a logistic regression over all-MiniLM-L6-v2
embeddings of the final answer plus the rule outcomes (5-fold stratified CV, out of fold), and
hybrids of both. Never run it on the held-out file: that file only measures the chosen judge.

    .venv/bin/python scripts/judge_rules_vs_classifier.py [resources/judge_dev.jsonl]
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from falsereject.core.refusal import detect_refusal
from falsereject.evaluation import fastpath
from falsereject.evaluation.calibration import load_calibration
from falsereject.evaluation.judge import split_reasoning
from falsereject.generation.diversity import load_embedder


def features(text: str) -> list[float]:
    sig = detect_refusal(text)
    sents = fastpath._sentences(text)
    kinds = [k for _, k in sents]
    help_words = sum(len(s.split()) for s, k in sents if k in ("content", "caution"))
    return [sig.label == "refusal", sig.label == "compliance", sig.label == "undecided",
            "caution" in kinds, "redirect" in kinds, np.log1p(help_words) / 5, "support" in kinds]


def score(y: np.ndarray, pred: np.ndarray, name: str) -> None:
    spc = "safe_partial_compliance"
    tp = ((pred == spc) & (y == spc)).sum()
    precision, recall = tp / max(1, (pred == spc).sum()), tp / (y == spc).sum()
    refusal_acc = ((pred == "direct_refusal") == (y == "direct_refusal")).mean()
    print(f"{name:52s} accuracy={(pred == y).mean():.3f} spc_precision={precision:.3f} "
          f"spc_recall={recall:.3f} refusal_accuracy={refusal_acc:.3f}")


def main(path: str = "resources/judge_dev.jsonl") -> None:
    if "heldout" in path:
        raise SystemExit("error: the held-out file is for measuring the chosen judge only")
    rows = load_calibration(path)
    finals = [split_reasoning(r["response"])[0] for r in rows]
    y = np.array([r["label"] for r in rows])
    emb = load_embedder().encode(finals, normalize_embeddings=True)
    feats = np.array([features(t) for t in finals], float)
    x = np.hstack([emb, feats])
    rules = np.array([fastpath.TO_CLASS.get(fastpath.classify(t).label, "undetermined")
                      for t in finals])
    print(f"{path}: {len(rows)} rows")
    score(y, rules, "rules (in-sample)")
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for c in (0.5, 2.0, 8.0):
        pred, proba = np.empty(len(y), dtype=object), np.zeros(len(y))
        for tr, te in folds.split(x, y):
            lr = LogisticRegression(C=c, max_iter=3000).fit(x[tr], y[tr])
            pred[te], proba[te] = lr.predict(x[te]), lr.predict_proba(x[te]).max(1)
        pred = pred.astype(str)
        score(y, pred, f"classifier C={c} (out of fold)")
        mixed = rules.copy()
        gray = feats[:, 2] == 1  # a decline next to content
        mixed[gray] = pred[gray]
        score(y, mixed, f"rules, classifier on decline+content C={c}")
        override = rules.copy()
        sure = (rules != pred) & (proba > 0.8)
        override[sure] = pred[sure]
        score(y, override, f"rules, classifier overrides when p>0.8 C={c}")


if __name__ == "__main__":
    main(*sys.argv[1:])
