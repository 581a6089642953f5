"""Near-duplicate removal: greedy in a stable order, by embedding cosine or word n-gram Jaccard.

The first prompt of each near-duplicate group (in the caller's order, e.g. by record id) is
kept; a later one is dropped when its similarity to any kept prompt reaches the threshold, and
the record names the kept one and the similarity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from falsereject.generation.diversity import ngrams, tokenize


@dataclass(frozen=True)
class Duplicate:
    duplicate_of: int  # index into the input of the kept prompt
    similarity: float


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def ngram_similarity_matrix(texts: Sequence[str], n: int) -> list[list[float]]:
    """Jaccard similarity of word n-gram sets (whole token list when shorter than n)."""
    sets = []
    for t in texts:
        toks = tokenize(t)
        sets.append(set(ngrams(toks, n)) or {tuple(toks)})
    return [[jaccard(a, b) for b in sets] for a in sets]


def embedding_similarity_matrix(texts: Sequence[str], embed: Callable[[Sequence[str]], Any]
                                ) -> list[list[float]]:
    import numpy as np

    v = np.asarray(embed(texts), dtype=np.float64)
    return (v @ v.T).tolist()


def dedup(texts: Sequence[str], *, method: str, threshold: float,
          embed: Callable[[Sequence[str]], Any] | None = None, ngram_n: int = 3
          ) -> dict[int, Duplicate]:
    """Indices to drop, each with the kept prompt it duplicates. Input order decides."""
    if not texts:
        return {}
    if method == "embedding":
        if embed is None:
            raise ValueError("dedup method 'embedding' needs an embedding function")
        sims = embedding_similarity_matrix(texts, embed)
    elif method == "ngram":
        sims = ngram_similarity_matrix(texts, ngram_n)
    else:
        raise ValueError(f"unknown dedup method {method!r} (embedding or ngram)")
    norm = [" ".join(tokenize(t)) for t in texts]
    kept: list[int] = []
    dropped: dict[int, Duplicate] = {}
    for i in range(len(texts)):
        best, best_sim = None, -1.0
        for j in kept:
            s = 1.0 if norm[i] == norm[j] else sims[i][j]
            if s > best_sim:
                best, best_sim = j, s
        if best is not None and best_sim >= threshold:
            dropped[i] = Duplicate(best, round(float(best_sim), 6))
        else:
            kept.append(i)
    return dropped
