"""Rules vs rules + a small classifier for the judge's fast path, on the DEVELOPMENT file only.

Question: does a logistic regression over all-MiniLM-L6-v2 embeddings of the final answer
(after `split_reasoning`) plus the rule outcome, combined with the rules, judge refusal-vs-not
better than the rules (`fastpath.classify`) alone? Decided by 5-fold cross-validation on the
development file (stratified by label, seeded, grouped so that near-duplicate answers, cosine
>= NEAR_DUP, stay in one fold). Never run on the held-out file: it only measures the chosen judge.

Options (all out of fold; the rules have nothing to train, so theirs are in-sample numbers on
the file they were written on, which flatters them):
  (a) rules alone;
  (b) the classifier alone (three classes);
  (c) rules, but a rules `compliance`/`partial` becomes `refusal` when the classifier's
      P(direct_refusal) > t; t chosen inside each training fold by an inner 5-fold CV (the t
      with the best inner refusal-vs-not accuracy, ties to the larger t), and also reported for
      every t of a fixed grid;
  (d) as (c) but only a rules `compliance` can be overridden (SPC untouched), nested t;
  (e) the classifier overrides any rules outcome when its top probability is above 0.8;
  (f) a classifier over the embedding alone (no rule features);
  (g) as (c) with P(DR) from (f), nested t, and for every t of the grid.
Decision rule, fixed before the results were seen: adopt a hybrid only if its pooled
out-of-fold refusal-vs-not accuracy beats the rules' by >= 0.01 AND its SPC recall and
precision each drop by <= 0.02 AND its refusal precision stays >= 0.95; otherwise keep the rules.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/judge_rules_vs_classifier.py [resources/judge_dev.jsonl]

Embeddings go through the stack's content-addressed cache (`cached_embedding_fn`), so a rerun
loads no model.

Result (2026-11-29, rules v3 / detector v6, the 680-row dev file; printed table below).
Decision by the rule above: KEEP THE RULES. No hybrid beats the rules' 0.978 out-of-fold
refusal-vs-not accuracy at all (best: equal). Why: the rules were written on this very file, so
their outcome is an almost perfect feature here; a classifier given it copies it ((b)-(e) match
the rules on refusal-vs-not; (c) changes no row at t >= 0.6 and adds errors below), and an
embedding-only override (g) only adds errors here at every t (0.976 at t=0.7, far worse below).
The "rule:" column applies the decision rule to each row of a table.
Proxy (information only, not the decision): older rules versions (v1, v2) were developed on the
first 432 / 566 dev rows; trained on those and tested on the later rows (styles those rules were
not written for), the classifier with rule features again copies the rules, while an
embedding-only P(DR) override lifts refusal-vs-not from 0.605 to 0.786 (v1, t=0.5) and from
0.658 to 0.746 (v2, t=0.7) with refusal precision >= 0.95 and SPC unchanged; but t chosen on
rows the rules fit (nested) is 0.7-0.9 and recovers only a little. So a useful hybrid would be
embedding-only and need its threshold set on rows the rules were not written on, which this
dev file no longer has; the older rules miss far more on their unseen rows (0.61/0.66) than
v3 does on the held-out file (0.944), so those gains do not carry over as numbers.

Result, round 3 (rules v4 / detector v7, the 1,109-row dev file; same decision rule): KEEP THE
RULES. Pooled out-of-fold refusal-vs-not: (a) rules 0.952; best hybrid (g) rules + embedding
P(DR) > t, nested t (0.8 in every fold), 0.956 (+0.004 < 0.01); (e) 0.953; (b) 0.949; (c)
0.945. New proxy: rules v3 (commit 4ee34ec, written on dev rows 1..680) tested on the 429
round-3 rows they never saw, classifier trained on the 680: rules 0.765, (g) at nested t = 0.9
0.788 (refusal precision 0.969, SPC unchanged), which the decision rule would adopt; (f) alone
0.790 but refusal precision 0.75. So, as with v1/v2, an embedding-only refusal override helps
on answer styles the rules were not written for (+0.02) and not on the rows they were; the
registered decision (the in-sample CV above) keeps the rules. A next round should set such an
override's threshold on a fresh batch of rows the rules have not seen, then measure it once on
a held-out batch.

resources/judge_dev.jsonl: 680 rows, 679 near-duplicate groups (cosine >= 0.95); 5-fold stratified grouped CV, seed 0, C=1.0
nested t per fold: {'c': [0.9, 0.9, 0.9, 0.9, 0.9], 'd': [0.9, 0.9, 0.9, 0.9, 0.9], 'g': [0.9, 0.9, 0.9, 0.9, 0.9]}

option                                   pooled: refusal-vs-not  3-class  refusal P/R  SPC P/R   | fold mean (min) of rvn, 3-class
(a) rules alone                          0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)
(b) classifier alone                     0.978  0.950  0.972/0.976  0.954/0.874   | 0.978 (0.963), 0.950 (0.941)  rule: no
(c) rules + P(DR)>t, nested t            0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(d) rules FC only + P(DR)>t, nested t    0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(e) classifier overrides if p>0.8        0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(f) embedding-only classifier            0.881  0.757  0.835/0.896  0.656/0.618   | 0.881 (0.860), 0.757 (0.713)  rule: no
(g) rules + P_emb(DR)>t, nested t        0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(c) rules + P(DR)>0.3                    0.975  0.949  0.966/0.976  0.959/0.864   | 0.975 (0.963), 0.949 (0.941)  rule: no
(c) rules + P(DR)>0.4                    0.976  0.950  0.969/0.976  0.960/0.869   | 0.976 (0.963), 0.950 (0.941)  rule: no
(c) rules + P(DR)>0.5                    0.976  0.950  0.969/0.976  0.960/0.869   | 0.976 (0.963), 0.950 (0.941)  rule: no
(c) rules + P(DR)>0.6                    0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(c) rules + P(DR)>0.7                    0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(c) rules + P(DR)>0.8                    0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(c) rules + P(DR)>0.9                    0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(g) rules + P_emb(DR)>0.3                0.851  0.829  0.744/0.990  0.983/0.602   | 0.851 (0.816), 0.829 (0.794)  rule: no
(g) rules + P_emb(DR)>0.4                0.912  0.888  0.835/0.986  0.973/0.743   | 0.912 (0.882), 0.888 (0.860)  rule: no
(g) rules + P_emb(DR)>0.5                0.940  0.916  0.890/0.979  0.963/0.812   | 0.940 (0.919), 0.916 (0.897)  rule: no
(g) rules + P_emb(DR)>0.6                0.963  0.938  0.937/0.979  0.964/0.848   | 0.963 (0.956), 0.938 (0.934)  rule: no
(g) rules + P_emb(DR)>0.7                0.976  0.950  0.966/0.979  0.965/0.869   | 0.976 (0.956), 0.950 (0.934)  rule: no
(g) rules + P_emb(DR)>0.8                0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no
(g) rules + P_emb(DR)>0.9                0.978  0.951  0.972/0.976  0.960/0.874   | 0.978 (0.963), 0.951 (0.941)  rule: no

PROXY rules v1 (commit 49e4bdd, developed on dev rows 1..432): train on those 432, test on the 248 later rows; t {'c': [0.9], 'd': [0.9], 'g': [0.7]}

option                                   pooled: refusal-vs-not  3-class  refusal P/R  SPC P/R
(a) rules alone                          0.605  0.488  0.950/0.375  0.826/0.380
(b) classifier alone                     0.609  0.492  0.966/0.375  0.833/0.400  rule: no
(c) rules + P(DR)>t, nested t            0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(d) rules FC only + P(DR)>t, nested t    0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(e) classifier overrides if p>0.8        0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(f) embedding-only classifier            0.819  0.706  0.942/0.750  0.500/0.540  rule: no
(g) rules + P_emb(DR)>t, nested t        0.685  0.569  0.963/0.507  0.826/0.380  rule: ADOPT
(c) rules + P(DR)>0.3                    0.613  0.496  0.952/0.388  0.864/0.380  rule: no
(c) rules + P(DR)>0.4                    0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(c) rules + P(DR)>0.5                    0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(c) rules + P(DR)>0.6                    0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(c) rules + P(DR)>0.7                    0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(c) rules + P(DR)>0.8                    0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(c) rules + P(DR)>0.9                    0.605  0.488  0.950/0.375  0.826/0.380  rule: no
(g) rules + P_emb(DR)>0.3                0.855  0.746  0.892/0.868  0.812/0.260  rule: no
(g) rules + P_emb(DR)>0.4                0.847  0.734  0.945/0.796  0.850/0.340  rule: no
(g) rules + P_emb(DR)>0.5                0.786  0.669  0.971/0.671  0.826/0.380  rule: ADOPT
(g) rules + P_emb(DR)>0.6                0.738  0.621  0.968/0.592  0.826/0.380  rule: ADOPT
(g) rules + P_emb(DR)>0.7                0.685  0.569  0.963/0.507  0.826/0.380  rule: ADOPT
(g) rules + P_emb(DR)>0.8                0.637  0.520  0.956/0.428  0.826/0.380  rule: ADOPT
(g) rules + P_emb(DR)>0.9                0.621  0.504  0.953/0.401  0.826/0.380  rule: ADOPT

PROXY rules v2 (commit 7308d17, developed on dev rows 1..566): train on those 566, test on the 114 later rows; t {'c': [0.9], 'd': [0.9], 'g': [0.9]}

option                                   pooled: refusal-vs-not  3-class  refusal P/R  SPC P/R
(a) rules alone                          0.658  0.579  0.946/0.486  0.786/0.500
(b) classifier alone                     0.667  0.588  0.972/0.486  0.800/0.545  rule: no
(c) rules + P(DR)>t, nested t            0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(d) rules FC only + P(DR)>t, nested t    0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(e) classifier overrides if p>0.8        0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(f) embedding-only classifier            0.868  0.754  0.938/0.847  0.565/0.591  rule: no
(g) rules + P_emb(DR)>t, nested t        0.675  0.596  0.949/0.514  0.786/0.500  rule: no
(c) rules + P(DR)>0.3                    0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(c) rules + P(DR)>0.4                    0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(c) rules + P(DR)>0.5                    0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(c) rules + P(DR)>0.6                    0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(c) rules + P(DR)>0.7                    0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(c) rules + P(DR)>0.8                    0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(c) rules + P(DR)>0.9                    0.658  0.579  0.946/0.486  0.786/0.500  rule: no
(g) rules + P_emb(DR)>0.3                0.842  0.789  0.865/0.889  0.875/0.318  rule: no
(g) rules + P_emb(DR)>0.4                0.851  0.781  0.910/0.847  0.900/0.409  rule: no
(g) rules + P_emb(DR)>0.5                0.825  0.746  0.948/0.764  0.833/0.455  rule: no
(g) rules + P_emb(DR)>0.6                0.781  0.702  0.943/0.694  0.769/0.455  rule: no
(g) rules + P_emb(DR)>0.7                0.746  0.667  0.957/0.625  0.786/0.500  rule: ADOPT
(g) rules + P_emb(DR)>0.8                0.719  0.640  0.955/0.583  0.786/0.500  rule: ADOPT
(g) rules + P_emb(DR)>0.9                0.675  0.596  0.949/0.514  0.786/0.500  rule: no
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from falsereject.core import refusal
from falsereject.evaluation import fastpath
from falsereject.evaluation.calibration import load_calibration
from falsereject.evaluation.judge import split_reasoning
from falsereject.generation.diversity import cached_embedding_fn
from falsereject.llm.cache import DiskCache

DR, SPC, FC = "direct_refusal", "safe_partial_compliance", "full_compliance"
CLASSES = [DR, SPC, FC]
SEED = 0
NEAR_DUP = 0.95
C = 1.0
GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
KINDS = ("decline", "redirect", "caution", "admonish", "support", "alternative", "offer",
         "filler", "content")


def rule_features(text: str, fp=fastpath, rf=refusal) -> tuple[str, list[float]]:
    """(rules class, features): one-hot rules outcome and detector label, sentence-kind
    presence, log help words, code. `fp`/`rf`: the fast-path and detector modules (an older
    rules version for the proxy)."""
    outcome = fp.classify(text).label
    det = rf.detect_refusal(text).label
    sents = fp._sentences(text)
    kinds = {k for _, k in sents}
    help_words = sum(len(s.split()) for s, k in sents if k in ("content", "caution"))
    f = [outcome == o for o in ("refusal", "partial", "compliance")]
    f += [det == o for o in ("refusal", "compliance", "undecided")]
    f += [k in kinds for k in KINDS]
    f += [np.log1p(help_words) / 5, rf.has_code(text)]
    return fastpath.TO_CLASS.get(outcome, "undetermined"), [float(v) for v in f]


def near_dup_groups(emb: np.ndarray, threshold: float = NEAR_DUP) -> np.ndarray:
    """Connected components of the graph 'cosine >= threshold' (unit vectors)."""
    n = len(emb)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    sims = emb @ emb.T
    for i, j in zip(*np.where(np.triu(sims, 1) >= threshold), strict=True):
        parent[find(int(i))] = find(int(j))
    return np.array([find(i) for i in range(n)])


def fit(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=5000).fit(x, y)


def p_refusal(model: LogisticRegression, x: np.ndarray) -> np.ndarray:
    return model.predict_proba(x)[:, list(model.classes_).index(DR)]


def override(rules: np.ndarray, p: np.ndarray, t: float, from_: tuple[str, ...]) -> np.ndarray:
    out = rules.copy()
    out[np.isin(rules, from_) & (p > t)] = DR
    return out


def refusal_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(((pred == DR) == (y == DR)).mean())


def choose_t(x: np.ndarray, y: np.ndarray, rules: np.ndarray, groups: np.ndarray,
             from_: tuple[str, ...]) -> float:
    """Threshold with the best inner-CV refusal-vs-not accuracy on the training rows."""
    p = np.zeros(len(y))
    inner = StratifiedGroupKFold(5, shuffle=True, random_state=SEED + 1)
    for tr, te in inner.split(x, y, groups):
        p[te] = p_refusal(fit(x[tr], y[tr]), x[te])
    scores = [(refusal_accuracy(y, override(rules, p, t, from_)), t) for t in GRID]
    return max(scores)[1]


def metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    def pr(c: str) -> tuple[float, float]:
        tp = ((pred == c) & (y == c)).sum()
        return tp / max(1, (pred == c).sum()), tp / max(1, (y == c).sum())
    (rp, rr), (sp, sr) = pr(DR), pr(SPC)
    return {"rvn": refusal_accuracy(y, pred), "acc3": float((pred == y).mean()),
            "ref_p": rp, "ref_r": rr, "spc_p": sp, "spc_r": sr}


NAMES = ["(a) rules alone", "(b) classifier alone", "(c) rules + P(DR)>t, nested t",
         "(d) rules FC only + P(DR)>t, nested t", "(e) classifier overrides if p>0.8",
         "(f) embedding-only classifier", "(g) rules + P_emb(DR)>t, nested t"]
NAMES += [f"(c) rules + P(DR)>{t}" for t in GRID] + [f"(g) rules + P_emb(DR)>{t}" for t in GRID]


def evaluate(x: np.ndarray, n_emb: int, y: np.ndarray, rules: np.ndarray, groups: np.ndarray,
             tr: np.ndarray, te: np.ndarray, chosen: dict[str, list[float]]
             ) -> dict[str, np.ndarray]:
    """Every option's predictions on the rows `te`, trained (and t chosen) on the rows `tr`."""
    out: dict[str, np.ndarray] = {NAMES[0]: rules[te]}
    model = fit(x[tr], y[tr])
    proba = model.predict_proba(x[te])
    cls = np.array(model.classes_)[proba.argmax(1)]
    p = proba[:, list(model.classes_).index(DR)]
    out[NAMES[1]] = cls
    for key, name, from_ in (("c", NAMES[2], (SPC, FC)), ("d", NAMES[3], (FC,))):
        t = choose_t(x[tr], y[tr], rules[tr], groups[tr], from_)
        chosen[key].append(t)
        out[name] = override(rules[te], p, t, from_)
    out[NAMES[4]] = np.where(proba.max(1) > 0.8, cls, rules[te])
    emb = x[:, :n_emb]
    emb_model = fit(emb[tr], y[tr])
    out[NAMES[5]] = emb_model.predict(emb[te])
    t = choose_t(emb[tr], y[tr], rules[tr], groups[tr], (SPC, FC))
    chosen["g"].append(t)
    p_emb = p_refusal(emb_model, emb[te])
    out[NAMES[6]] = override(rules[te], p_emb, t, (SPC, FC))
    for t in GRID:
        out[f"(c) rules + P(DR)>{t}"] = override(rules[te], p, t, (SPC, FC))
        out[f"(g) rules + P_emb(DR)>{t}"] = override(rules[te], p_emb, t, (SPC, FC))
    return out


def table(y: np.ndarray, preds: dict[str, np.ndarray], folds: list[np.ndarray]) -> None:
    print(f"\n{'option':40s} pooled: refusal-vs-not  3-class  refusal P/R  SPC P/R"
          + ("   | fold mean (min) of rvn, 3-class" if len(folds) > 1 else ""))
    base = metrics(y, preds[NAMES[0]])
    for name in NAMES:
        pred = preds[name]
        m = metrics(y, pred)
        adopt = (m["rvn"] - base["rvn"] >= 0.01 and base["spc_r"] - m["spc_r"] <= 0.02
                 and base["spc_p"] - m["spc_p"] <= 0.02 and m["ref_p"] >= 0.95)
        line = (f"{name:40s} {m['rvn']:.3f}  {m['acc3']:.3f}  {m['ref_p']:.3f}/{m['ref_r']:.3f}"
                f"  {m['spc_p']:.3f}/{m['spc_r']:.3f}")
        if len(folds) > 1:
            per = [metrics(y[te], pred[te]) for te in folds]
            rvn, acc = [f["rvn"] for f in per], [f["acc3"] for f in per]
            line += (f"   | {np.mean(rvn):.3f} ({min(rvn):.3f}), "
                     f"{np.mean(acc):.3f} ({min(acc):.3f})")
        if name != NAMES[0]:
            line += f"  rule: {'ADOPT' if adopt else 'no'}"
        print(line)


def load_rules(commit: str) -> tuple[object, object]:
    """The detector and fast-path modules as they were at `commit` (for the proxy)."""
    import subprocess
    import types

    mods = []
    for path in ("src/falsereject/core/refusal.py", "src/falsereject/evaluation/fastpath.py"):
        src = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True,
                             check=True).stdout
        name = f"_rules_{commit}_{len(mods)}"
        mod = types.ModuleType(name)
        sys.modules[name] = mod
        if mods:
            src = src.replace("from falsereject.core import refusal", "")
            mod.refusal = mods[0]
        exec(compile(src, path, "exec"), mod.__dict__)
        mods.append(mod)
    return mods[0], mods[1]


def prepare(rows: list[dict], emb: np.ndarray, fp=fastpath, rf=refusal):
    finals = [split_reasoning(r["response"])[0] for r in rows]
    rules, feats = zip(*(rule_features(t, fp, rf) for t in finals), strict=True)
    return np.array(rules), np.hstack([emb, np.array(feats)])


def main(path: str = "resources/judge_dev.jsonl") -> None:
    if "heldout" in path:
        raise SystemExit("error: the held-out file is for measuring the chosen judge only")
    rows = load_calibration(path)
    finals = [split_reasoning(r["response"])[0] for r in rows]
    y = np.array([r["label"] for r in rows])
    emb = cached_embedding_fn(DiskCache())(finals).astype(np.float64)
    rules, x = prepare(rows, emb)
    groups = near_dup_groups(emb)
    print(f"{path}: {len(rows)} rows, {len(set(groups))} near-duplicate groups "
          f"(cosine >= {NEAR_DUP}); 5-fold stratified grouped CV, seed {SEED}, C={C}")
    preds = {n: np.empty(len(y), dtype=object) for n in NAMES}
    chosen: dict[str, list[float]] = {"c": [], "d": [], "g": []}
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=SEED).split(x, y, groups))
    for tr, te in folds:
        for name, pred in evaluate(x, emb.shape[1], y, rules, groups, tr, te, chosen).items():
            preds[name][te] = pred
    print(f"nested t per fold: {chosen}")
    table(y, {k: v.astype(str) for k, v in preds.items()}, [te for _, te in folds])

    # Proxy for rules on answers they were not written on, still inside the dev file: an older
    # rules version was developed on the first n rows only; train on those, test on the rest.
    ids = [r["id"] for r in rows]
    for commit, n in PROXIES:
        rf, fp = load_rules(commit)
        rules_old, x_old = prepare(rows, emb, fp, rf)
        tr = np.array([i for i, rid in enumerate(ids) if row_number(rid) <= n])
        te = np.array([i for i, rid in enumerate(ids) if row_number(rid) > n])
        chosen = {"c": [], "d": [], "g": []}
        out = evaluate(x_old, emb.shape[1], y, rules_old, groups, tr, te, chosen)
        print(f"\nPROXY rules v{fp.RULES_VERSION} (commit {commit}, developed on dev rows "
              f"1..{n}): train on those {len(tr)}, test on the {len(te)} later rows; t {chosen}")
        table(y[te], {k: v.astype(str) for k, v in out.items()}, [np.arange(len(te))])


def row_number(row_id: str) -> int:
    """dev-0433 -> 433; the round-3 rows (dev-r3real-*, dev-r3syn-*) come after all of them."""
    tail = row_id.split("-")[1]
    return int(tail) if tail.isdigit() else 10**6


# (commit, last dev row the rules at that commit were developed on); 4ee34ec: rules v3 /
# detector v6, written on dev rows 1..680, before the round-3 rows existed
PROXIES = (("49e4bdd", 432), ("7308d17", 566), ("4ee34ec", 680))


if __name__ == "__main__":
    main(*sys.argv[1:])
