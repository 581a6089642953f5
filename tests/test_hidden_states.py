"""Guarantee: the override's encoder reads an answer the same whatever batch it is in, caches
each vector so a re-run loads no model, and rejects a spec it cannot serve."""

from __future__ import annotations

import numpy as np
import pytest

from falsereject.evaluation import hidden_states
from falsereject.evaluation.hidden_states import EncoderSpec, cached_encoder
from falsereject.llm.cache import DiskCache

SPEC = EncoderSpec("smollm2", 12, 96)
SHORT = "I can't help with that."
LONG = ("To kill a hung Python process, find its id with `ps aux | grep python`, then send it "
        "SIGTERM with `kill <pid>`; if it ignores that, `kill -9 <pid>` ends it at once. ") * 3


@pytest.fixture(scope="module")
def stack():
    return hidden_states.load_truncated(SPEC)


def test_an_answer_reads_the_same_alone_or_padded_in_a_batch(stack):
    alone = hidden_states.encode(*stack, [SHORT], SPEC.max_tokens)
    batched = hidden_states.encode(*stack, [LONG, SHORT], SPEC.max_tokens)
    assert alone.shape == (1, 576) and batched.shape == (2, 576)
    np.testing.assert_allclose(batched[1], alone[0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(batched[0], batched[1], atol=1e-2)


def test_max_tokens_cuts_the_answer(stack):
    cut = hidden_states.encode(*stack, [LONG, LONG + " And more text after it."], 32)
    np.testing.assert_allclose(cut[0], cut[1], rtol=1e-4, atol=1e-4)


def test_vectors_are_cached_so_a_rerun_loads_no_model(tmp_path, monkeypatch, stack):
    monkeypatch.setattr(hidden_states, "load_truncated", lambda spec: stack)
    first = cached_encoder(SPEC, DiskCache(tmp_path))([SHORT, LONG, SHORT])
    assert first.shape == (3, 576)

    def no_model(spec):
        raise AssertionError("a cached text loaded the model")

    monkeypatch.setattr(hidden_states, "load_truncated", no_model)
    again = cached_encoder(SPEC, DiskCache(tmp_path))([LONG, SHORT])
    np.testing.assert_array_equal(again, first[[1, 0]])
    # another layer is another key
    other = EncoderSpec("smollm2", 8, 96)
    with pytest.raises(AssertionError, match="loaded the model"):
        cached_encoder(other, DiskCache(tmp_path))([SHORT])


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "minilm", "model": "smollm2", "layer": 12, "max_tokens": 96}, "encoder kind"),
    ({"kind": "hidden_states", "model": "smollm2", "layer": 0, "max_tokens": 96}, ">= 1"),
    ({"kind": "hidden_states", "model": "smollm2", "layer": 12}, "max_tokens"),
])
def test_a_bad_encoder_spec_is_rejected(data, message):
    with pytest.raises((ValueError, KeyError), match=message):
        EncoderSpec.from_dict(data)


def test_a_layer_beyond_the_model_is_a_clear_error():
    with pytest.raises(ValueError, match="layer 99: local/smollm2 has 30"):
        hidden_states.load_truncated(EncoderSpec("smollm2", 99, 96))
