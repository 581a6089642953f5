"""Embedded-model sampling depends on each request's own seed, never on its batch neighbours,
so a stage resumed after a kill samples exactly what an uninterrupted run would have."""

from __future__ import annotations

import torch

from falsereject.localmodel import SeededSampler


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
