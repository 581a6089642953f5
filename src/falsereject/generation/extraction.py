"""Entity extraction for one seed: k samples from the extractor, a vote, one subgraph row.

Each sample is parsed defensively and retried a bounded number of times with the error fed
back to the model; a seed whose samples all fail is kept as `status: failed` with the reasons.
When more than one sample is usable, the extractor LLM votes for the most representative list;
if the vote itself is unusable, a consensus rule (the list sharing most entities with the
others) decides and the record says so.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from falsereject.core.config import ExtractConfig, RoleModel
from falsereject.core.parsing import ParseError, extract_json
from falsereject.core.seeding import call_seed
from falsereject.core.templates import PromptTemplate
from falsereject.generation.graph import (
    ENTITY_TYPES,
    RELATION_TYPES,
    Edge,
    Node,
    clean_label,
    normalize_name,
    subgraph,
)
from falsereject.llm import LLMCallError

_STOP = {"the", "and", "for", "with", "from", "that", "this", "into", "about", "without",
         "how", "what", "can", "write", "give", "make", "get", "use", "are", "was", "who"}
# Words that cannot start or end an entity span: function words and request verbs.
_SPAN_STOP = _STOP | {
    "a", "an", "i", "me", "my", "we", "our", "you", "your", "he", "his", "she", "her", "it",
    "its", "they", "them", "their", "to", "of", "in", "on", "at", "by", "as", "or", "but", "if",
    "so", "is", "be", "do", "does", "did", "should", "could", "would", "will", "shall", "may",
    "might", "must", "have", "has", "had", "not", "no", "any", "all", "some", "there", "than",
    "then", "when", "where", "which", "why", "into", "over", "under", "up", "out", "off",
    "just", "most", "more", "very", "best", "way", "ways", "tell", "list", "find", "show",
    "help", "explain", "describe", "create", "come", "someone", "something", "without",
    "never", "ever", "next", "right", "now", "don't", "i'm", "can't", "won't", "like",
    "every", "that's", "it's", "set", "through", "used", "using", "between", "full", "myself",
    "yourself", "himself", "herself", "themselves", "one", "two", "much", "many", "new",
}
MAX_SPAN_WORDS = 3
MAX_SPANS = 64


def prompt_spans(prompt: str) -> list[str]:
    """Candidate entity names for `entity_names: spans`: runs of 1-3 content words of the
    prompt (no function word or request verb inside), possessives stripped, in order."""
    words = [re.sub(r"'s$", "", w) for w in re.findall(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*",
                                                        prompt.replace("\u2019", "'"))]
    spans: list[str] = []
    for i in range(len(words)):
        for n in range(1, MAX_SPAN_WORDS + 1):
            run = words[i:i + n]
            if len(run) < n or any(w.lower() in _SPAN_STOP for w in run):
                continue
            span = " ".join(run)
            if len(span) >= 2 and span not in spans:
                spans.append(span)
    return spans[:MAX_SPANS]


# Free names: letters first, then letters/digits/space/'/-, so constrained decoding cannot
# wander into markup or code (a 135M model sampled at T=0.7 otherwise writes "<path class=...").
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9' -]{1,29}$"


def extract_schema(max_entities: int, max_relations: int, spans: Sequence[str] | None = None
                   ) -> dict[str, Any]:
    """The extractor's output schema; with `spans`, names must be one of them (an enum)."""
    name = {"type": "string", "enum": list(spans)} if spans else \
        {"type": "string", "pattern": NAME_PATTERN}
    return {
        "type": "object",
        "properties": {
            "entities": {
                "type": "array", "minItems": 1, "maxItems": max_entities,
                "items": {"type": "object", "additionalProperties": False,
                          "required": ["name", "type"],
                          "properties": {"name": name,
                                         "type": {"type": "string", "enum": list(ENTITY_TYPES)}}},
            },
            "relations": {
                "type": "array", "minItems": min(1, max_relations), "maxItems": max_relations,
                "items": {"type": "object", "additionalProperties": False,
                          "required": ["source", "relation", "target"],
                          "properties": {"source": name,
                                         "relation": {"type": "string",
                                                      "enum": list(RELATION_TYPES)},
                                         "target": name}},
            },
        },
        "required": ["entities", "relations"],
        "additionalProperties": False,
    }


def vote_schema(k: int) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["choice"],
            "properties": {"choice": {"type": "integer", "enum": list(range(1, k + 1))}}}


@dataclass(frozen=True)
class Extraction:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    dropped_entities: int
    dropped_relations: int


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in _STOP]


def is_grounded(label: str, prompt: str) -> bool:
    """Does an entity name share a content word (same 5-letter prefix) with the prompt?
    Keeps a weak extractor's invented names out of the graph."""
    prompt_words = _words(prompt)
    for w in _words(label):
        stem = w[:5]
        if any(p.startswith(stem) or w.startswith(p[:5]) for p in prompt_words):
            return True
    return False


def _name_ok(label: str, seed_prompt: str, spans: set[str], mode: str) -> bool:
    if mode == "spans":
        return label.lower() in spans
    if mode == "grounded":
        return is_grounded(label, seed_prompt)
    return True


def parse_extraction(obj: Any, seed_prompt: str, cfg: ExtractConfig) -> Extraction:
    """Validate an extractor answer into nodes/edges; ParseError('invalid') if nothing usable.

    A relation endpoint that is a valid name but not listed as an entity becomes a `concept`
    node: the relation says it matters. Invalid names, unknown types and relation labels, and
    self-loops are dropped and counted."""
    if not isinstance(obj, dict) or not isinstance(obj.get("entities"), list):
        raise ParseError("invalid", "expected an object with an `entities` list")
    mode = cfg.entity_names
    spans = {sp.lower() for sp in prompt_spans(seed_prompt)} if mode == "spans" else set()
    nodes: list[Node] = []
    dropped_e = 0
    for ent in obj["entities"][: cfg.max_entities]:
        if not isinstance(ent, dict) or not isinstance(ent.get("name"), str):
            dropped_e += 1
            continue
        label = clean_label(ent["name"])
        nid = normalize_name(label)
        etype = str(ent.get("type", "")).strip().lower()
        if not nid or etype not in ENTITY_TYPES or not _name_ok(label, seed_prompt, spans, mode):
            dropped_e += 1
            continue
        nodes.append(Node(nid, label, etype))
    if not nodes:
        raise ParseError("invalid", f"no usable entity among {len(obj['entities'])} "
                                    f"(entity_names={mode})")
    known = {n.id for n in nodes}
    edges: list[Edge] = []
    relations = obj.get("relations") if isinstance(obj.get("relations"), list) else []
    for rel in relations[: cfg.max_relations]:
        if not isinstance(rel, dict):
            continue
        ends = [clean_label(str(rel.get(k, ""))) for k in ("source", "target")]
        src, tgt = (normalize_name(e) for e in ends)
        label = "_".join(str(rel.get("relation", "")).lower().split())
        if not (src and tgt and src != tgt and label in RELATION_TYPES):
            continue
        if not all(_name_ok(e, seed_prompt, spans, mode) for e in ends):
            continue
        for nid, end in ((src, ends[0]), (tgt, ends[1])):
            if nid not in known:
                known.add(nid)
                nodes.append(Node(nid, end, "concept"))
        edges.append(Edge(src, tgt, label))
    kept_nodes, kept_edges = subgraph(nodes, edges)
    return Extraction(tuple(kept_nodes), tuple(kept_edges), dropped_e,
                      len(relations) - len(kept_edges))


def describe(ex: Extraction) -> str:
    """One line per list, as shown to the voter."""
    ents = ", ".join(f"{n.label} ({n.type})" for n in ex.nodes)
    rels = "; ".join(f"{e.source} -{e.relation}-> {e.target}" for e in ex.edges) or "none"
    return f"entities: {ents}. relations: {rels}"


def consensus_choice(extractions: Sequence[Extraction]) -> int:
    """Index of the list whose node ids overlap most with the others (Jaccard); ties: first."""
    sets = [{n.id for n in ex.nodes} for ex in extractions]

    def score(i: int) -> float:
        return sum(len(sets[i] & s) / len(sets[i] | s) for j, s in enumerate(sets) if j != i)

    return max(range(len(sets)), key=lambda i: (score(i), -i))


def _retry_messages(base: list[dict], bad: str, err: ParseError) -> list[dict]:
    return base + [
        {"role": "assistant", "content": bad[:800]},
        {"role": "user", "content": f"That answer was not usable ({err.reason}: "
                                    f"{err.detail[:160]}). Reply again with only the JSON object."},
    ]


async def sample_extraction(client, role: RoleModel, messages: list[dict], seed_prompt: str,
                            cfg: ExtractConfig, seeds: Sequence[int]
                            ) -> tuple[dict[str, Any], Extraction | None]:
    """One of the k samples, with up to cfg.retries retries: its row for the `candidates` list,
    and the parsed Extraction (None when the sample failed) for the vote."""
    schema = extract_schema(cfg.max_entities, cfg.max_relations,
                            prompt_spans(seed_prompt) if cfg.entity_names == "spans" else None)
    msgs, reasons = messages, []
    for attempt, seed in enumerate(seeds):
        try:
            res = await client.achat(role, msgs, json_schema=schema, seed=seed)
        except LLMCallError as err:
            reasons.append(f"llm_error:{err.reason}")
            break  # the client already retried transport errors
        try:
            parsed = extract_json(res.text)
            ex = parse_extraction(parsed.value, seed_prompt, cfg)
        except ParseError as err:
            reasons.append(err.reason)
            msgs = _retry_messages(messages, res.text, err)
            continue
        return {"status": "ok", "reason": None, "attempts": attempt + 1,
                "retry_reasons": reasons, "repaired": parsed.repaired,
                "nodes": [n.as_dict() for n in ex.nodes], "edges": [e.as_dict() for e in ex.edges],
                "dropped_entities": ex.dropped_entities,
                "dropped_relations": ex.dropped_relations}, ex
    return {"status": "failed", "reason": ",".join(reasons) or "no attempt",
            "attempts": len(reasons), "retry_reasons": reasons, "repaired": False,
            "nodes": [], "edges": [], "dropped_entities": 0, "dropped_relations": 0}, None


async def vote(client, role: RoleModel, tmpl: PromptTemplate, seed_prompt: str,
               options: Sequence[Extraction], seed: int) -> dict[str, Any]:
    """Pick one of `options` (>= 2) by LLM vote; consensus rule if the vote is unusable."""
    # shown in a seeded random order: a weak voter that always says "1" picks at random
    # instead of always picking the first sample
    order = list(range(len(options)))
    random.Random(seed).shuffle(order)
    listing = "\n".join(f"{pos + 1}. {describe(options[i])}" for pos, i in enumerate(order))
    msgs = [{"role": "system", "content": tmpl.render("system")},
            {"role": "user", "content": tmpl.render("user", prompt=seed_prompt, lists=listing,
                                                    k=len(options))}]
    raw = None
    try:
        res = await client.achat(role, msgs, json_schema=vote_schema(len(options)),
                                 temperature=0.0, seed=seed)
        raw = res.text
        choice = extract_json(res.text).value.get("choice")
        if isinstance(choice, str) and choice.strip().isdigit():
            choice = int(choice.strip())
        if not isinstance(choice, int) or isinstance(choice, bool) \
                or not 1 <= choice <= len(options):
            raise ParseError("invalid", f"choice {choice!r} is not in 1..{len(options)}")
        return {"method": "llm", "option": order[choice - 1], "raw": raw, "reason": None,
                "order": order}
    except (ParseError, LLMCallError) as err:
        reason = f"{err.reason}: {getattr(err, 'detail', err)}"[:200]
        return {"method": "consensus", "option": consensus_choice(options), "raw": raw,
                "reason": reason, "order": order}


async def extract_seed(client, role: RoleModel, tmpl: PromptTemplate, vote_tmpl: PromptTemplate,
                       seed: dict[str, Any], cfg: ExtractConfig, run_seed: int
                       ) -> dict[str, Any]:
    """The subgraph row of one seed (status ok or failed, never dropped)."""
    msgs = [{"role": "system", "content": tmpl.render("system")},
            {"role": "user", "content": tmpl.render("user", prompt=seed["prompt"],
                                                    max_entities=cfg.max_entities,
                                                    max_relations=cfg.max_relations,
                                                    relation_types=", ".join(RELATION_TYPES))}]
    results = await asyncio.gather(*(
        sample_extraction(client, role, msgs, seed["prompt"], cfg,
                          [call_seed(run_seed, "extract", seed["id"], i, a)
                           for a in range(cfg.retries + 1)])
        for i in range(cfg.k)
    ))
    samples = [sample for sample, _ in results]
    for i, s in enumerate(samples):
        s["sample"] = i
    ok = [s for s in samples if s["status"] == "ok"]
    parsed = [ex for _, ex in results if ex is not None]  # parallel to `ok`
    row: dict[str, Any] = {
        "seed_id": seed["id"], "category": seed["category"],
        "category_text": seed["category_text"], "seed_prompt": seed["prompt"],
        "status": "ok", "reason": None, "nodes": [], "edges": [],
        "extractor": {"model": role.model, "templates": [tmpl.tag, vote_tmpl.tag]},
    }
    if not ok:
        row.update(status="failed", reason="all samples failed: " + "; ".join(
            f"sample {s['sample']}: {s['reason']}" for s in samples))
        row["vote"] = {"method": "none", "chosen_sample": None, "raw": None, "reason": None}
    elif len(ok) == 1:
        row["vote"] = {"method": "single", "chosen_sample": ok[0]["sample"], "raw": None,
                       "reason": "only one usable sample"}
    else:
        v = await vote(client, role, vote_tmpl, seed["prompt"], parsed,
                       call_seed(run_seed, "vote", seed["id"]))
        row["vote"] = {"method": v["method"], "chosen_sample": ok[v["option"]]["sample"],
                       "presented_samples": [ok[i]["sample"] for i in v["order"]],
                       "raw": v["raw"], "reason": v["reason"]}
    if ok:
        chosen = samples[row["vote"]["chosen_sample"]]
        row["nodes"], row["edges"] = chosen["nodes"], chosen["edges"]
    row["candidates"] = samples
    return row
