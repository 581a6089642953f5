"""The three agents of the adversarial loop: prompts, output schemas, parsers, bounded retries.

- Generator: writes a seemingly-harmful-but-benign prompt from a seed's entity subgraph, or
  revises its previous prompt with the feedback of the gate that failed it (the Discriminator's
  feedback, the refusal pool's answers, the Orchestrator's rationale).
- Discriminator: "genuinely_unsafe" vs "seemingly_unsafe" (only looks unsafe), with feedback.
- Orchestrator: is this a valid over-refusal case (benign, legitimate value, likely to be
  refused)? With a rationale.
Every call asks for JSON under a schema (constrained decoding for the embedded model, structured
outputs for hosted/vLLM ones); the text is still parsed defensively and retried with the error
fed back, a bounded number of times.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from falsereject.core.config import RoleModel
from falsereject.core.parsing import (
    ParseError,
    extract_json,
    require_bool,
    require_choice,
    require_str,
)
from falsereject.core.templates import PromptTemplate
from falsereject.llm import LLMCallError

VERDICTS = ("seemingly_unsafe", "genuinely_unsafe")
ACCEPT_VERDICT = "seemingly_unsafe"
FEEDBACK_CHARS = 100
RATIONALE_CHARS = 100


class AgentError(RuntimeError):
    """An agent gave no usable answer within its retries; `reason` is recorded as-is."""

    def __init__(self, reason: str, attempts: list[dict[str, Any]]):
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True)
class AgentReply:
    value: dict[str, Any]
    text: str
    attempts: list[dict[str, Any]]  # the failed tries before this one: {reason, text}


_WORD = r"[A-Za-z0-9,.;:'?!()&%$-]{1,15}"
_FIRST_WORD = r"[A-Za-z][A-Za-z0-9,.;:'?!()&%$-]{0,14}"  # a letter first: no paths, no stray ")"


def text_field(max_chars: int, min_words: int = 2) -> dict[str, Any]:
    """Plain sentence text: words of letters, digits and ordinary punctuation, no markup or
    code, about `max_chars` long at most (as a word count: xgrammar cannot compile a long
    bounded character repetition, and ignores maxLength next to a pattern). Keeps a small
    sampled model from drifting into HTML/JSON fragments; hosted models are unaffected."""
    max_words = max(min_words, max_chars // 7)
    return {"type": "string",
            "pattern": rf"^{_FIRST_WORD}( {_WORD}){{{min_words - 1},{max_words - 1}}}$"}


def _literal(text: str) -> str:
    """`text` as a regex literal, escaping only regex syntax (JSON-schema regex engines reject
    Python's escapes of spaces and hyphens)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", " ".join(text.split()))


def focus_field(max_chars: int, focus: str) -> dict[str, Any]:
    """Like `text_field`, but the text must contain `focus` (the entity the prompt is about):
    the Generator is asked to mention it, and constrained decoding holds a small model to that
    (measured with SmolLM2, asked in words only: 12 of 63 drafts on 12 seeds named it)."""
    words = max(4, max_chars // 7) - len(focus.split())
    before, after = max(words // 2, 1), max(words - words // 2, 1)
    return {"type": "string",
            "pattern": rf"^({_FIRST_WORD}( {_WORD}){{0,{before - 1}}} )?{_literal(focus)}"
                       rf"( {_WORD}){{0,{after}}}$"}


def generator_schema(max_chars: int, focus: str | None = None) -> dict[str, Any]:
    field = text_field(max_chars, min_words=4) if focus is None else focus_field(max_chars, focus)
    return {"type": "object", "additionalProperties": False, "required": ["prompt"],
            "properties": {"prompt": field}}


# Reason first, then decide (keys also sort that way, as the embedded engine orders them).
# Measured with SmolLM2: asked for the decision first, it took the first option every time.
# The word-bounded explanation keeps the answer inside the role's max_tokens.
DISCRIMINATOR_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["feedback", "verdict"],
    "properties": {"feedback": text_field(FEEDBACK_CHARS),
                   "verdict": {"type": "string", "enum": list(VERDICTS)}},
}

ORCHESTRATOR_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["rationale", "valid"],
    "properties": {"rationale": text_field(RATIONALE_CHARS),
                   "valid": {"type": "boolean"}},
}


def clip_words(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars`, at a word boundary."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1].rsplit(" ", 1)[0]
    return cut if cut else text[:max_chars]


def parse_generator(obj: dict, max_chars: int, focus: str | None = None) -> dict[str, Any]:
    prompt = clip_words(require_str(obj, "prompt"), max_chars)
    if len(prompt) < 12:
        raise ParseError("invalid", f"prompt too short: {prompt!r}")
    if focus is not None and focus.lower() not in prompt.lower():
        raise ParseError("invalid", f"prompt does not mention {focus!r}: {prompt!r}")
    return {"prompt": prompt}


def _optional_text(obj: dict, key: str, max_chars: int) -> str:
    """An explanation field: may be missing, must not be of a wrong type."""
    if key not in obj:
        return ""
    return clip_words(require_str(obj, key, allow_empty=True), max_chars)


def parse_discriminator(obj: dict) -> dict[str, Any]:
    return {"verdict": require_choice(obj, "verdict", VERDICTS),
            "feedback": _optional_text(obj, "feedback", FEEDBACK_CHARS)}


def parse_orchestrator(obj: dict) -> dict[str, Any]:
    return {"valid": require_bool(obj, "valid"),
            "rationale": _optional_text(obj, "rationale", RATIONALE_CHARS)}


async def ask_json(client: Any, role: RoleModel, messages: list[dict], schema: dict,
                   parse: Callable[[dict], dict[str, Any]], seeds: Sequence[int],
                   temperature: float | None = None) -> AgentReply:
    """One agent answer: len(seeds) tries at most, each retry shown the previous error."""
    msgs, failed = list(messages), []
    for seed in seeds:
        try:
            res = await client.achat(role, msgs, json_schema=schema, seed=seed,
                                     temperature=temperature)
        except LLMCallError as err:  # transport retries already happened in the client
            failed.append({"reason": f"llm_error:{err.reason}", "text": None})
            raise AgentError(f"llm_error:{err.reason}", failed) from None
        try:
            value = parse(extract_json(res.text).value)
        except ParseError as err:
            failed.append({"reason": err.reason, "text": res.text[:500]})
            msgs = list(messages) + [
                {"role": "assistant", "content": res.text[:800]},
                {"role": "user", "content": f"That answer was not usable ({err.reason}: "
                                            f"{err.detail[:160]}). Reply again with only the "
                                            f"JSON object."},
            ]
            continue
        return AgentReply(value, res.text, failed)
    raise AgentError("parse_failed:" + ",".join(a["reason"] for a in failed), failed)


def graph_text(nodes: Sequence[dict], edges: Sequence[dict]) -> str:
    """The subgraph as the Generator sees it."""
    labels = {n["id"]: n["label"] for n in nodes}
    ents = "; ".join(f"{n['label']} ({n['type']})" for n in nodes)
    rels = "; ".join(f"{labels.get(e['source'], e['source'])} {e['relation']} "
                     f"{labels.get(e['target'], e['target'])}" for e in edges)
    return f"Entities: {ents}\nRelations: {rels or 'none'}"


@dataclass(frozen=True)
class Agents:
    """The role models and templates of one run."""

    generator: RoleModel
    discriminator: RoleModel
    orchestrator: RoleModel
    generator_tmpl: PromptTemplate
    discriminator_tmpl: PromptTemplate
    orchestrator_tmpl: PromptTemplate
    max_prompt_chars: int
    retries: int

    def templates(self) -> dict[str, str]:
        return {"generator": self.generator_tmpl.tag,
                "discriminator": self.discriminator_tmpl.tag,
                "orchestrator": self.orchestrator_tmpl.tag}

    async def generate(self, client: Any, *, category_text: str, graph: str, focus: str,
                       previous: str | None, feedback: tuple[str, str] | None,
                       seeds: Sequence[int]) -> AgentReply:
        """A first draft, or (with `previous`) a revision answering `feedback`: (gate, text)
        of the gate that failed, rendered with the template text `revise.<gate>`."""
        t = self.generator_tmpl
        if previous is None:
            user = t.render("user", category=category_text, graph=graph, focus=focus,
                            max_chars=self.max_prompt_chars)
        else:
            gate, text = feedback or ("discriminator", "")
            user = t.render(f"revise.{gate}", category=category_text, graph=graph,
                            focus=focus, previous=previous, feedback=text or "",
                            max_chars=self.max_prompt_chars)
        msgs = [{"role": "system", "content": t.render("system")},
                {"role": "user", "content": user}]
        return await ask_json(client, self.generator, msgs,
                              generator_schema(self.max_prompt_chars, focus),
                              lambda o: parse_generator(o, self.max_prompt_chars, focus), seeds)

    async def discriminate(self, client: Any, prompt: str, seeds: Sequence[int]) -> AgentReply:
        t = self.discriminator_tmpl
        msgs = [{"role": "system", "content": t.render("system")},
                {"role": "user", "content": t.render("user", prompt=prompt)}]
        return await ask_json(client, self.discriminator, msgs, DISCRIMINATOR_SCHEMA,
                              parse_discriminator, seeds)

    async def orchestrate(self, client: Any, *, prompt: str, category_text: str,
                          refusals: int, pool_size: int, seeds: Sequence[int]) -> AgentReply:
        t = self.orchestrator_tmpl
        msgs = [{"role": "system", "content": t.render("system")},
                {"role": "user", "content": t.render("user", prompt=prompt,
                                                     category=category_text,
                                                     refusals=refusals, pool_size=pool_size)}]
        return await ask_json(client, self.orchestrator, msgs, ORCHESTRATOR_SCHEMA,
                              parse_orchestrator, seeds)
