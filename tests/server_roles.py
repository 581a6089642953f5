"""Responders for the loopback test server that play pipeline roles well enough for a stage to
succeed, so fault and resume tests exercise real stages end to end."""

from __future__ import annotations

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


def pipeline_responder(body: dict) -> str:
    """Every role of a full run: the generation roles as `test_generate_vllm` plays them, and a
    schema instance or plain text (which the judge reads as `undetermined`) for the rest."""
    from test_generate_vllm import responder as generation_roles

    from falsereject.testserver import default_responder

    try:
        return generation_roles(body)
    except (AssertionError, AttributeError, IndexError, KeyError):
        return default_responder(body)
