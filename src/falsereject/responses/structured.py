"""Structured FalseReject responses: responder prompts, the four-part checker, reasoning split.

A response has four answer parts in order (acknowledge the readings, answer the safe reading,
caution about the unsafe reading with a pointer to help, closing); a CoT response adds a
reasoning trace (safe reading, unsafe reading, plan). Two strategies ask the responder:

- `per_part`: one focused call per part. A 135M model ignores a four-section format but
  follows a one-job instruction, so the embedded default uses this.
- `single`: one call per response with fixed headings (capable models). For CoT the trace is
  LiteLLM's separate `reasoning_content` when the model provides it, else a `<think>` block.

Every call's output goes through the checker; failing units are regenerated with a new seed
(`responder.py` runs the rounds) and dropped with the reason after `max_attempts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falsereject.core.config import StructureConfig
from falsereject.core.refusal import detect_refusal
from falsereject.core.seeding import call_seed
from falsereject.core.templates import PromptTemplate, load_template
from falsereject.core.text import ThinkSplit, split_think

ANSWER_PARTS = ("acknowledge", "safe_answer", "caution", "closing")
REASONING_PARTS = ("safe_reading", "unsafe_reading", "plan")
MODES = ("instruct", "cot")


# --- prompt templates -----------------------------------------------------------------------


@dataclass(frozen=True)
class Templates:
    version: str  # e.g. responder_v1
    sha256: str
    source: PromptTemplate
    headings: dict[str, str]  # answer part -> heading word (strategy single)

    @property
    def per_part(self) -> dict[str, str]:
        """part -> its unrendered user template (placeholder $prompt)."""
        return {part: self.source.text(_part_key(part)) for part in (*ANSWER_PARTS,
                                                                     *REASONING_PARTS)}


def _part_key(part: str) -> str:
    return f"per_part.{'answer' if part in ANSWER_PARTS else 'reasoning'}.{part}"


def load_templates(path: str | Path) -> Templates:
    """Read and validate a responder prompt file (prompts/structure/responder_*.yaml)."""
    user_keys = [_part_key(p) for p in (*ANSWER_PARTS, *REASONING_PARTS)] + \
        [f"single.{mode}.user" for mode in MODES]
    heading_keys = [f"single.headings.{p}" for p in ANSWER_PARTS]
    t = load_template(path, required=("version", *user_keys, *heading_keys),
                      placeholders={key: ("prompt",) for key in user_keys})
    for key in ("per_part.system", *(f"single.{mode}.system" for mode in MODES)):
        t.text(key, optional=True)  # a text or null
    return Templates(version=str(t.value("version")), sha256=t.sha256[:16], source=t,
                     headings={p: t.render(k) for p, k in zip(ANSWER_PARTS, heading_keys,
                                                               strict=True)})


def _messages(system: str | None, user: str) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": user}]


def part_messages(t: Templates, part: str, prompt: str) -> list[dict[str, str]]:
    return _messages(t.source.render_optional("per_part.system"),
                     t.source.render(_part_key(part), prompt=prompt))


def single_messages(t: Templates, mode: str, prompt: str) -> list[dict[str, str]]:
    return _messages(t.source.render_optional(f"single.{mode}.system"),
                     t.source.render(f"single.{mode}.user", prompt=prompt))


# --- reasoning: native field or <think> block -----------------------------------------------


def split_reasoning(text: str, reasoning_field: str | None) -> ThinkSplit:
    """The provider's separate reasoning field wins; else the `<think>` block in the text."""
    if reasoning_field and reasoning_field.strip():
        inline = split_think(text)  # some servers send both; keep the answer clean
        return ThinkSplit(reasoning_field.strip(), inline.answer, inline.closed)
    return split_think(text)


# --- parsing and checking -------------------------------------------------------------------


def _heading_re(word: str) -> re.Pattern:
    mark = r"(?:\*\*|__)?"
    return re.compile(rf"^[ \t]*(?:#{{1,6}}[ \t]*)?{mark}[ \t]*{re.escape(word)}[ \t]*{mark}"
                      rf"[ \t]*(?::|$)[ \t]*{mark}", re.I | re.M)


def parse_headed(text: str, headings: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """The four parts under their headings, in order; (parts so far, `missing_part:<p>`)."""
    parts: dict[str, str] = {}
    pos, prev = 0, None
    for part in ANSWER_PARTS:
        m = _heading_re(headings[part]).search(text, pos)
        if m is None:
            return parts, f"missing_part:{part}"
        if prev is not None:
            parts[prev[0]] = text[prev[1]: m.start()].strip()
        prev, pos = (part, m.end()), m.end()
    parts[prev[0]] = text[prev[1]:].strip()
    return parts, None


_WRAP_QUOTES = re.compile(r'^["\u201c\'](.*)["\u201d\']$', re.S)
_SENT_END = re.compile(r"[.!?][\"'\u201d)\]]*(?=\s|$)")
_RESOURCE = re.compile(
    r"\b(professional|expert|doctor|physician|pharmacist|nurse|lawyer|attorney|counsell?or|"
    r"therapist|police|authorit(?:y|ies)|hotline|helpline|organi[sz]ation|agency|resource|"
    r"specialist|advis[eo]r|official|consult|poison control|emergency|support|service|"
    r"locksmith|bank|teacher|school|administrator|landlord|parent|guardian|counsel)", re.I)


def clean_part(text: str, heading: str | None = None) -> str:
    """Strip whitespace, wrapping quotes and an echoed heading from one part's text."""
    text = text.strip()
    if heading:
        text = re.sub(rf"^{re.escape(heading)}\s*:\s*", "", text, flags=re.I)
    m = _WRAP_QUOTES.match(text)
    if m and '"' not in m.group(1):
        text = m.group(1).strip()
    return text


def trim_to_sentence(text: str) -> str:
    """`text` cut after its last complete sentence ("" when it has none)."""
    ends = list(_SENT_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else ""


def distinct_trigrams(text: str) -> float:
    words = re.findall(r"\w+", text.lower())
    grams = list(zip(words, words[1:], words[2:], strict=False))
    return len(set(grams)) / len(grams) if len(grams) >= 10 else 1.0


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def check_part(part: str, text: str, cfg: StructureConfig) -> str | None:
    """The checker for one part: None when it passes, else the reason."""
    if not text.strip():
        return f"empty:{part}"
    min_words = getattr(cfg.min_words, part, None) or cfg.min_words.reasoning
    if word_count(text) < min_words:
        return f"too_short:{part}"
    if distinct_trigrams(text) < cfg.min_distinct_trigrams:
        return f"repetitive:{part}"
    if part == "safe_answer" and detect_refusal(text).label == "refusal":
        return "refusal"
    if part == "caution" and cfg.require_resource_pointer and not _RESOURCE.search(text):
        return "no_resource_pointer"
    return None


def check_answer(parts: dict[str, str], cfg: StructureConfig) -> str | None:
    """The four-part checker: every part present, long enough, not a loop, not a refusal."""
    for part in ANSWER_PARTS:
        reason = check_part(part, parts.get(part, ""), cfg)
        if reason:
            return reason
    return None


def join_parts(parts: dict[str, str], order: tuple[str, ...]) -> str:
    """Prose of the parts in order, one paragraph each (the public schema has no headings)."""
    return "\n\n".join(parts[p].strip() for p in order)


# --- one unit's output -> value or reason ---------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    value: Any  # str (a part), dict of answer parts, or {"reasoning", "parts"}; None on failure
    reason: str | None
    trimmed: bool = False


def evaluate_part(part: str, text: str, reasoning: str | None, finish: str | None,
                  cfg: StructureConfig) -> Outcome:
    """A per_part call: the part's text (reasoning models' traces are dropped), checked."""
    split = split_reasoning(text, reasoning)
    body = clean_part(split.answer)
    trimmed = False
    if finish == "length" or not split.closed:
        if not cfg.trim_truncated or not split.closed:
            return Outcome(None, f"truncated:{part}")
        body, trimmed = trim_to_sentence(body), True
        if not body:
            return Outcome(None, f"truncated:{part}")
    reason = check_part(part, body, cfg)
    return Outcome(None if reason else body, reason, trimmed)


def evaluate_single(mode: str, text: str, reasoning: str | None, finish: str | None,
                    t: Templates, cfg: StructureConfig) -> Outcome:
    """A single-call response: reasoning (cot), headed parts, the four-part checker."""
    split = split_reasoning(text, reasoning)
    if finish == "length" or not split.closed:
        return Outcome(None, "truncated")
    if not split.answer:
        return Outcome(None, "empty")
    parts, missing = parse_headed(split.answer, t.headings)
    if missing:
        if detect_refusal(split.answer).label == "refusal":
            return Outcome(None, "refusal")
        return Outcome(None, missing)
    parts = {p: clean_part(v) for p, v in parts.items()}
    reason = check_answer(parts, cfg)
    if reason:
        return Outcome(None, reason)
    if mode == "instruct":
        return Outcome(parts, None)
    trace = (split.reasoning or "").strip()
    if not trace:
        return Outcome(None, "missing_reasoning")
    reason = check_part("reasoning", trace, cfg)
    # how the trace was made: the provider's separate reasoning field, or the model's own
    # <think> block in the text; either way one call that reasoned, then answered
    source = "model_reasoning" if reasoning and reasoning.strip() else "think_block"
    return Outcome(None, reason) if reason else Outcome(
        {"reasoning": trace, "parts": parts, "trace": source}, None)


def unit_seed(run_seed: int, rid: str, mode: str, part: str | None, attempt: int) -> int:
    """A stable per-(record, mode, part, attempt) sampling seed: regenerations differ."""
    # ":" and 31 bits: the responder's seeds since v1, so its cached answers stay valid
    return call_seed(run_seed, rid, mode, part or "-", attempt, sep=":") & 0x7FFFFFFF
