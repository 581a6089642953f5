"""The judge override's answer encoder: mean-pooled hidden states of an embedded local model.

A sentence embedding (all-MiniLM-L6-v2) mostly sees an answer's topic; the hidden states part-way
up an instruct model's stack also see its stance (declines, deflects, answers). On the
development file, 5-fold out of fold, refusal-vs-not on the rows left decided at 92% coverage:
MiniLM 0.951, SmolLM2-135M-Instruct layer 12 (first 96 tokens of the answer) 0.962
(`scripts/train_judge_override.py` prints its own table).

An answer is read as the assistant turn `<|im_start|>assistant\\n<answer>`, its first `max_tokens`
tokens, through the model's first `layer` decoder layers, in float32; its vector is the mean of
that layer's states over its tokens. Vectors are cached per text in the embedding cache
(FR_EMBEDDING_CACHE_DIR), so a re-run whose answers were all read before loads no model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

BATCH = 16


@dataclass(frozen=True)
class EncoderSpec:
    """Which local model (`local/<model>` of the registry), which layer, how many tokens."""

    model: str
    layer: int
    max_tokens: int
    kind: str = "hidden_states"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSpec:
        if data.get("kind") != "hidden_states":
            raise ValueError(f"encoder kind {data.get('kind')!r}, this judge reads "
                             "'hidden_states'")
        spec = cls(str(data["model"]), int(data["layer"]), int(data["max_tokens"]))
        if spec.layer < 1 or spec.max_tokens < 1:
            raise ValueError(f"encoder layer and max_tokens must be >= 1: {data}")
        return spec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def turn(answer: str) -> str:
    """The text the encoder reads for one answer."""
    return f"<|im_start|>assistant\n{answer}"


def load_truncated(spec: EncoderSpec) -> tuple[Any, Any]:
    """(decoder stack cut after `spec.layer`, tokenizer), float32, right padding."""
    from falsereject.llm.local.registry import local_spec
    from falsereject.llm.local.weights import load

    model, tok = load(local_spec(spec.model), dtype="float32")
    layers = model.model.layers
    if spec.layer > len(layers):
        raise ValueError(f"encoder layer {spec.layer}: local/{spec.model} has {len(layers)}")
    model.model.layers = layers[:spec.layer]
    tok.padding_side = "right"
    return model.model, tok


def encode(stack: Any, tok: Any, texts: Sequence[str], max_tokens: int) -> Any:
    """Mean-pooled last-layer states of `stack` per text (numpy float32, one row per text)."""
    import numpy as np
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
    out = np.zeros((len(texts), stack.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            enc = tok([turn(texts[i]) for i in idx], return_tensors="pt", padding=True,
                      truncation=True, max_length=max_tokens)
            states = stack(**enc, output_hidden_states=True).hidden_states[-1]
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            out[idx] = ((states * mask).sum(1) / mask.sum(1)).numpy()
    return out


def cached_encoder(spec: EncoderSpec, cache: Any = None) -> Callable[[Sequence[str]], Any]:
    """`encode` behind the embeddings' disk cache (`core.embeddings.cached_vectors`; default:
    the embedding cache), one entry per text; the model is loaded only on the first miss."""
    from falsereject.core.embeddings import cached_vectors
    from falsereject.llm.cache import embedding_cache

    def make() -> Callable[[Sequence[str]], Any]:
        stack, tok = load_truncated(spec)
        return lambda texts: encode(stack, tok, texts, spec.max_tokens)

    return cached_vectors(cache if cache is not None else embedding_cache(),
                          {"v": 1, **spec.to_dict()}, make)
