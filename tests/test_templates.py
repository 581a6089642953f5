"""The one prompt-template format and loader (core/templates.py): YAML texts, $name placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from falsereject.core.io import InputError
from falsereject.core.templates import load_template, parse_template

ROOT = Path(__file__).resolve().parents[1]


def test_every_prompt_file_in_the_repo_loads_and_renders():
    files = sorted((ROOT / "prompts").rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        t = load_template(path)
        for key in ("user", "per_part.answer.caution"):
            if t.text(key, optional=True):
                names = t.placeholders(key)
                text = t.render(key, **{n: f"<{n}>" for n in names})
                assert "$" not in text.replace("$$", "") or "<" in text


def test_literal_blocks_keep_exactly_their_line_breaks():
    t = parse_template("a: |-\n  one\n  two\nb: |\n  ends with a newline\n")
    assert t.render("a") == "one\ntwo"
    assert t.render("b") == "ends with a newline\n"


def test_placeholders_dollar_escape_and_braces():
    t = parse_template('user: \'Cost $$5 for ${item}s; JSON {"k": "$v"}\'')
    assert t.render("user", item="apple", v="x") == 'Cost $5 for apples; JSON {"k": "x"}'
    assert t.placeholders("user") == {"item", "v"}
    with pytest.raises(InputError, match=r"'user' uses \$v but no value was given"):
        t.render("user", item="a")


def test_dotted_keys_null_and_data():
    t = parse_template("version: v1\nper_part:\n  system: null\n  answer:\n    x: Hi $prompt\n"
                       "heads: {a: Readings}\n")
    assert t.render("per_part.answer.x", prompt="p") == "Hi p"
    assert t.text("per_part.system") is None
    assert t.render_optional("per_part.system") is None
    assert t.render_optional("missing.key") is None
    assert t.value("version") == "v1" and t.render("heads.a") == "Readings"
    with pytest.raises(InputError, match="no key 'per_part.answer.y'"):
        t.render("per_part.answer.y")
    with pytest.raises(InputError, match="'per_part.system' is null"):
        t.render("per_part.system")


def test_load_time_checks_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("user: costs $ 5\n")
    with pytest.raises(InputError, match=r"bad.yaml: 'user': a `\$` that starts no placeholder"):
        load_template(bad)
    bad.write_text("system: hi\n")
    with pytest.raises(InputError, match=r"bad.yaml: missing key\(s\) 'user'"):
        load_template(bad, required=("system", "user"))
    bad.write_text("user: about $topic\n")
    with pytest.raises(InputError, match=r"'user' never uses \$prompt and uses unknown \$topic"):
        load_template(bad, placeholders={"user": ("prompt",)})
    bad.write_text("- a list\n")
    with pytest.raises(InputError, match="a prompt template is a YAML mapping"):
        load_template(bad)
    bad.write_text("user: [unclosed\n")
    with pytest.raises(InputError, match="bad.yaml: malformed YAML"):
        load_template(bad)


def test_tag_and_digest_follow_the_file_text(tmp_path):
    a = parse_template("user: x\n", tmp_path / "p_v1.yaml")
    b = parse_template("user: x\n# comment\n", tmp_path / "p_v1.yaml")
    assert a.tag.startswith("p_v1.yaml@") and len(a.sha) == 12
    assert a.sha256 != b.sha256 and a.render("user") == b.render("user")
