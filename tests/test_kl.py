"""The token-level KL analysis: the divergence on hand-computed distributions, the masking, and
the teacher-forced logits' alignment on a tiny random model."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from falsereject.evaluation.kl import per_position_kl, response_logits, summarize  # noqa: E402


def test_kl_matches_a_hand_computed_case():
    # position 1: P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 0.143841
    # position 2: P = Q: KL = 0
    p = torch.log(torch.tensor([[[0.5, 0.5], [0.3, 0.7]]], dtype=torch.float64))
    q = torch.log(torch.tensor([[[0.25, 0.75], [0.3, 0.7]]], dtype=torch.float64))
    kl, counts = per_position_kl(p, q, torch.ones(1, 2))
    assert kl[0] == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-9)
    assert kl[0] == pytest.approx(0.143841, abs=1e-6)
    assert kl[1] == pytest.approx(0.0, abs=1e-12) and counts == [1, 1]
    # logits, not probabilities: a constant shift changes nothing
    kl2, _ = per_position_kl(p + 3.0, q - 1.0, torch.ones(1, 2))
    assert kl2 == pytest.approx(kl, abs=1e-9)
    # KL is asymmetric: KL(Q || P) = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.130812
    back, _ = per_position_kl(q, p, torch.ones(1, 2))
    assert back[0] == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-9)


def test_kl_averages_only_counted_positions():
    p = torch.log(torch.tensor([[[0.5, 0.5]], [[0.9, 0.1]]], dtype=torch.float64))  # 2 rows
    q = torch.log(torch.tensor([[[0.25, 0.75]], [[0.5, 0.5]]], dtype=torch.float64))
    row2 = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    kl, counts = per_position_kl(p, q, torch.tensor([[0], [1]]))
    assert counts == [1] and kl[0] == pytest.approx(row2, abs=1e-9)
    both, _ = per_position_kl(p, q, torch.ones(2, 1))
    assert both[0] == pytest.approx((0.143841 + row2) / 2, abs=1e-6)
    none, c0 = per_position_kl(p, q, torch.zeros(2, 1))
    assert none == [0.0] and c0 == [0]
    s = summarize([0.1, 0.3, 0.0], [2, 2, 0])
    assert s["kl_mean"] == pytest.approx(0.2) and s["kl_pos03"] == 0.0


def test_teacher_forced_logits_line_up_with_the_response_tokens():
    """Row 0 is left-padded; its response logits equal those of the unpadded sequence."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg).eval()
    prompt = torch.tensor([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5]])  # row 0: two pads on the left
    pmask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    resp = torch.tensor([[8, 9, 10], [11, 12, 13]])
    batch = {"prompt_ids": prompt, "prompt_mask": pmask, "response_ids": resp,
             "response_mask": torch.ones_like(resp)}
    got = response_logits(model, batch)
    assert got.shape == (2, 3, 50)
    with torch.inference_mode():
        alone = model(input_ids=torch.tensor([[5, 6, 7, 8, 9, 10]])).logits
    # the logits predicting response tokens 8, 9, 10 sit at positions 2, 3, 4 of the sequence
    assert torch.allclose(got[0], alone[0, 2:5], atol=1e-4)
    kl, _ = per_position_kl(got, got, batch["response_mask"])
    assert kl == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
