"""The refusal-validation pool: every member answers a candidate prompt; refusals are marked.

Members are pluggable (conf/llm/*: `refusal_pool`):
- `llm`: a model reached through the LLM client, answering the prompt as a user message;
- `lexical`: a keyword moderation filter of the kind deployments put in front of models. It
  blocks any prompt containing a listed term (case-insensitive, on word boundaries; phrases
  match as whole phrases) with a canned refusal, and otherwise lets it through. It is the
  classic over-blocking guardrail ("How do I kill a Python process?"), and it keeps the gate
  meaningful when the only LLM in the pool never refuses.
Every answer, whatever produced it, is marked by the shared detector `refusal.is_refusal`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falsereject.core.config import PoolMember
from falsereject.core.io import InputError, read_text_strict
from falsereject.core.refusal import detect_refusal, is_refusal
from falsereject.llm import LLMCallError

BLOCKED_TEMPLATE = ("I'm sorry, but I can't help with that request. It was blocked by the "
                    "content filter (matched term: \"{term}\").")
PASSED_TEXT = "[content filter: no blocked term found; the request is passed to the model]"


@dataclass(frozen=True)
class LexicalFilter:
    name: str
    path: str
    terms: tuple[str, ...]
    patterns: tuple[re.Pattern, ...]
    sha: str

    @property
    def model_id(self) -> str:
        return f"lexical:{Path(self.path).name}@{self.sha}"

    def match(self, prompt: str) -> str | None:
        """The first listed term found in `prompt` (list order), or None."""
        for term, pat in zip(self.terms, self.patterns, strict=True):
            if pat.search(prompt):
                return term
        return None

    def answer(self, prompt: str) -> tuple[str, str | None]:
        term = self.match(prompt)
        return (BLOCKED_TEMPLATE.format(term=term) if term else PASSED_TEXT), term


def term_pattern(term: str) -> re.Pattern:
    """Whole-word (or whole-phrase) match, any whitespace between the words of a phrase."""
    body = r"\s+".join(re.escape(w) for w in term.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def load_filter(name: str, path: str | Path) -> LexicalFilter:
    text = read_text_strict(path)
    terms: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        term = " ".join(line.split()).lower()
        if not term or term.startswith("#"):
            continue
        if not re.search(r"\w", term):
            raise InputError(f"{path}:{n}: term {line.strip()!r} has no word characters")
        if term not in terms:
            terms.append(term)
    if not terms:
        raise InputError(f"{path}: no terms (only blank lines and comments)")
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return LexicalFilter(name, str(path), tuple(terms), tuple(term_pattern(t) for t in terms), sha)


class Pool:
    """The configured members, ready to answer; `lexical` members block on `terms_file`."""

    def __init__(self, members: list[PoolMember], terms_file: str | Path | None = None):
        if not members:
            raise ValueError("the refusal pool needs at least one member")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise InputError(f"refusal_pool member names must be unique, got {names}")
        self.members = members
        lexical = [m.name for m in members if m.kind == "lexical"]
        if lexical and not terms_file:
            raise InputError(f"pool members {lexical} are lexical filters but no terms file is "
                             "configured (llm.moderation_terms)")
        self.filters = {name: load_filter(name, Path(terms_file)) for name in lexical}

    def lexical_block(self, text: str) -> str | None:
        """The first term a lexical member blocks in `text`, or None (no LLM call)."""
        for flt in self.filters.values():
            term = flt.match(text)
            if term:
                return term
        return None

    def model_ids(self) -> dict[str, str]:
        return {m.name: (m.llm.model if m.kind == "llm" else self.filters[m.name].model_id)
                for m in self.members}

    async def answer(self, client: Any, prompt: str, seed: int) -> list[dict[str, Any]]:
        """One answer per member, in config order, each with its refusal mark."""
        return list(await asyncio.gather(*(self._one(client, m, prompt, seed)
                                           for m in self.members)))

    async def _one(self, client: Any, m: PoolMember, prompt: str, seed: int) -> dict[str, Any]:
        out: dict[str, Any] = {"member": m.name, "kind": m.kind, "model": None, "answer": None,
                               "refused": False, "refusal_rule": None, "matched_term": None,
                               "error": None}
        if m.kind == "lexical":
            flt = self.filters[m.name]
            out["model"] = flt.model_id
            out["answer"], out["matched_term"] = flt.answer(prompt)
        else:
            out["model"] = m.llm.model
            try:
                system = [{"role": "system", "content": m.system}] if m.system else []
                res = await client.achat(m.llm, [*system, {"role": "user", "content": prompt}],
                                         seed=seed)
            except LLMCallError as err:
                out["error"] = f"{err.reason}: {err.detail}"[:200]
                return out
            out["answer"] = res.text
        out["refused"] = is_refusal(out["answer"])
        out["refusal_rule"] = detect_refusal(out["answer"]).rule
        return out
