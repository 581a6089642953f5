"""Responders for the loopback test server that play pipeline roles well enough for a stage to
succeed, so fault and resume tests exercise real stages end to end."""

from __future__ import annotations

import hashlib
import json
import re


def extract_responder(body: dict) -> str:
    """Plays the extractor (entities copied from the request) and the voter (first list)."""
    user = body["messages"][-1]["content"]
    if "choice" in json.dumps(body.get("response_format") or {}):
        return '{"choice": 1}'
    request = re.search(r'Request: "([^"]*)"', user).group(1)
    words = [w for w in re.findall(r"[A-Za-z]+", request) if len(w) > 4][:3]
    return json.dumps({"entities": [{"name": w, "type": "object"} for w in words],
                       "relations": [{"source": words[0], "relation": "involves",
                                      "target": words[-1]}]})


_STRUCTURE_ASKS = ("Someone asked:", "Consider the question:",
                   "Answer the safe, legitimate version")


def prose(body: dict) -> str:
    """A few distinct, helpful sentences (passes the `structure` checker's length, loop and
    refusal checks), varied by the request so every part differs."""
    tag = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()
    return (f"Most people ask this for ordinary, legitimate reasons such as study or safety "
            f"work (note {tag[:6]}). The key facts are well documented in public guides, and "
            f"a licensed professional or a counselor can help with specifics. Misuse is "
            f"possible, so details that enable harm are left out on purpose. Feel free to ask "
            f"follow-up questions about case {tag[6:12]}.")


def pipeline_responder(body: dict) -> str:
    """Every role of a full run: the generation roles as `test_generate_vllm` plays them, the
    `structure` parts as helpful prose, and a schema instance or plain text (which the judge
    reads as `undetermined`) for the rest."""
    from test_generate_vllm import responder as generation_roles

    from falsereject.testing.server import default_responder

    if any(ask in body["messages"][-1]["content"] for ask in _STRUCTURE_ASKS):
        return prose(body)
    system = body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else ""
    if "exactly four sections" in system:  # structure, strategy single (one call per response)
        think = f"<think>{prose(body)}</think>\n" if "<think>" in system else ""
        return think + "\n".join(f"{h}: {prose({'messages': [h, body['messages']]})}"
                                  for h in ("Readings", "Answer", "Caution", "Closing"))
    try:
        return generation_roles(body)
    except (AssertionError, AttributeError, IndexError, KeyError):
        return default_responder(body)
