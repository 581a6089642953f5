"""Seeded temperature/top-p sampling as a logits processor: a request's sample does not depend
on the batch it ran in."""

from __future__ import annotations


class SeededSampler:
    """Logits processor that turns greedy decoding into temperature/top-p sampling with a
    per-row seed: it keeps only the sampled token, which greedy search then picks.

    Row i's draw at step t is one uniform number from a generator seeded by (seed_i, t) alone,
    mapped through the row's cumulative distribution (inverse CDF), so a sample does not depend
    on the batch it ran in, unlike a global torch seed; and it costs one number per row and step.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        self.seeds = seeds
        self.temperature = temperature
        self.top_p = top_p
        self._start: int | None = None

    TOP_K = 1024  # candidates sorted for the nucleus; sorting the whole vocab is 1/6 of decoding

    def _nucleus(self, probs):
        """Zero every token outside the top-p nucleus (the top token always stays).

        Sorts only the TOP_K most likely tokens; a row whose TOP_K tokens hold less than top_p
        of the mass (a very flat distribution) is sorted whole. Both give the same nucleus as
        a full sort: every token past the TOP_K is preceded by at least top_p of mass.
        """
        import torch

        k = min(self.TOP_K, probs.shape[-1])
        ordered, idx = torch.topk(probs, k, dim=-1)
        if bool((ordered.sum(dim=-1) < self.top_p).any()):
            ordered, idx = torch.sort(probs, dim=-1, descending=True)
        drop = ordered.cumsum(dim=-1) - ordered >= self.top_p
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, idx, ~drop)
        return probs.masked_fill(~keep, 0.0)

    def __call__(self, input_ids, scores):
        import torch

        if self._start is None:
            self._start = input_ids.shape[1]
        step = input_ids.shape[1] - self._start
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            probs = self._nucleus(probs)
        cdf = probs.cumsum(dim=-1)
        u = torch.tensor([
            torch.rand(1, generator=torch.Generator().manual_seed(
                (int(seed) * 1_000_003 + step) % 2**63)).item()
            for seed in self.seeds
        ], dtype=cdf.dtype).clamp_(min=1e-9)
        picked = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1))
        picked = picked.clamp_(max=scores.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, picked, 0.0)
