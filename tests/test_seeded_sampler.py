"""Embedded-model sampling depends on each request's own seed, never on its batch neighbours,
so a stage resumed after a kill samples exactly what an uninterrupted run would have."""

from __future__ import annotations

import torch

from falsereject.llm.local.engine import SeededSampler


def pick(seeds, logits, prompt_len=5, step=0, temperature=0.8, top_p=1.0):
    ids = torch.zeros((len(seeds), prompt_len + step), dtype=torch.long)
    sampler = SeededSampler(seeds, temperature, top_p)
    sampler._start = prompt_len
    return sampler(ids, logits.clone()).argmax(dim=-1).tolist()


def test_a_rows_sample_ignores_its_batch():
    torch.manual_seed(0)
    row = torch.randn(1, 500)
    alone = pick([7], row)
    batch = torch.cat([torch.randn(2, 500), row, torch.randn(1, 500)])
    assert pick([1, 2, 7, 3], batch)[2] == alone[0]
    assert pick([7], row, step=3) == pick([9, 7], torch.cat([torch.randn(1, 500), row]),
                                          step=3)[1:]


def test_seeds_and_steps_vary_the_sample_like_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    draws = [pick([s], logits, temperature=1.0)[0] for s in range(2000)]
    freq = torch.bincount(torch.tensor(draws), minlength=4).float() / len(draws)
    expected = torch.softmax(logits[0], dim=-1)
    assert torch.allclose(freq, expected, atol=0.04)
    assert len({pick([5], logits, step=t)[0] for t in range(30)}) > 1


def test_top_p_never_picks_outside_the_nucleus():
    logits = torch.tensor([[5.0, 4.0, -3.0, -3.0, -3.0]])  # top two hold > 99% of the mass
    assert {pick([s], logits, temperature=1.0, top_p=0.9)[0] for s in range(300)} <= {0, 1}
    assert {pick([s], logits, temperature=1.0, top_p=0.01)[0] for s in range(50)} == {0}


def full_sort_nucleus(probs, top_p):
    """The nucleus by sorting the whole vocabulary (the definition)."""
    ordered, idx = torch.sort(probs, dim=-1, descending=True)
    drop = ordered.cumsum(dim=-1) - ordered >= top_p
    return probs.masked_fill(drop.scatter(-1, idx, drop), 0.0)


def test_the_partial_sort_keeps_exactly_the_full_sort_nucleus():
    torch.manual_seed(1)
    vocab = 49152
    peaked = torch.randn(6, vocab) * 4.0    # the nucleus fits in the top 1024
    flat = torch.randn(2, vocab) * 0.01     # it does not: those rows need the whole sort
    for logits in (peaked, flat, torch.cat([peaked[:3], flat[:1]])):
        for top_p in (0.5, 0.9, 0.95):
            probs = torch.softmax(logits / 0.8, dim=-1)
            got = SeededSampler([0] * len(probs), 0.8, top_p)._nucleus(probs)
            want = full_sort_nucleus(probs, top_p)
            assert torch.equal(got > 0, want > 0)
            assert torch.equal(got, want)
    # the peaked rows really were decided by the partial sort alone
    top = torch.topk(torch.softmax(peaked / 0.8, dim=-1), 1024, dim=-1).values.sum(-1)
    assert bool((top >= 0.95).all())
    top = torch.topk(torch.softmax(flat / 0.8, dim=-1), 1024, dim=-1).values.sum(-1)
    assert bool((top < 0.5).all())
