"""Defensive JSON extraction from LLM text: good, fenced, chatty, malformed, truncated, refusing."""

from __future__ import annotations

import pytest

from falsereject.core.parsing import (
    ParseError,
    extract_json,
    repair_truncated,
    require_bool,
    require_choice,
    require_str,
)


def test_plain_json():
    p = extract_json('{"prompt": "How do I kill a Python process?"}')
    assert p.value == {"prompt": "How do I kill a Python process?"} and not p.repaired


def test_fenced_json_with_prose_around():
    text = 'Sure! Here you go:\n```json\n{"verdict": "seemingly_unsafe", "feedback": "ok"}\n```\nHope it helps.'
    assert extract_json(text).value["verdict"] == "seemingly_unsafe"


def test_trailing_prose_and_braces_in_strings():
    text = '{"prompt": "What does {x} mean in a \\"format\\" string?"} I think this works {'
    assert extract_json(text).value["prompt"] == 'What does {x} mean in a "format" string?'


def test_skips_non_json_braces_before_the_object():
    text = 'Use the template {name} here: {"choice": 2}'
    assert extract_json(text).value == {"choice": 2}


def test_truncated_object_is_repaired_to_its_complete_members():
    text = ('{"entities": [{"name": "coffee", "type": "object"}, {"name": "police", '
            '"type": "organization"}, {"name": "hus')
    p = extract_json(text)
    assert p.repaired
    assert p.value == {"entities": [{"name": "coffee", "type": "object"},
                                    {"name": "police", "type": "organization"}]}


def test_truncated_inside_the_only_string_is_not_repairable():
    with pytest.raises(ParseError) as err:
        extract_json('{"prompt": "How would a locksmith open a')
    assert err.value.reason == "truncated"


def test_repair_drops_an_incomplete_number_and_closes_brackets():
    assert repair_truncated('{"a": 1, "b": [1, 2') == '{"a": 1, "b": [1]}'
    assert repair_truncated('{"a": "x", "b') == '{"a": "x"}'
    assert repair_truncated('{"a": 1}') is None  # complete: nothing to repair


def test_malformed_json_is_reported_as_such():
    with pytest.raises(ParseError) as err:
        extract_json("{'prompt': 'single quotes are not JSON'}")
    assert err.value.reason == "malformed"


def test_refusal_instead_of_json():
    with pytest.raises(ParseError) as err:
        extract_json("I'm sorry, but I can't help with that request.")
    assert err.value.reason == "refusal"


@pytest.mark.parametrize("text,reason", [("", "empty"), ("   \n", "empty"), (None, "empty"),
                                         ("The answer is yes.", "no_json")])
def test_empty_and_prose_only(text, reason):
    with pytest.raises(ParseError) as err:
        extract_json(text)
    assert err.value.reason == reason


def test_wrong_top_level_type():
    with pytest.raises(ParseError):
        extract_json("[1, 2, 3]")
    assert extract_json("[1, 2, 3]", expect=list).value == [1, 2, 3]


def test_field_validators():
    assert require_str({"p": "  a\n b "}, "p") == "a b"
    assert require_str({"p": "abcdef"}, "p", max_len=3) == "abc"
    assert require_choice({"v": "Seemingly Unsafe"}, "v", ("seemingly_unsafe", "x")) == \
        "seemingly_unsafe"
    assert require_bool({"valid": "yes"}, "valid") is True
    assert require_bool({"valid": False}, "valid") is False
    for bad in (lambda: require_str({"p": 3}, "p"), lambda: require_str({"p": " "}, "p"),
                lambda: require_choice({"v": "maybe"}, "v", ("a", "b")),
                lambda: require_bool({"valid": "perhaps"}, "valid")):
        with pytest.raises(ParseError) as err:
            bad()
        assert err.value.reason == "invalid"
