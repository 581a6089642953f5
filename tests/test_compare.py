"""Stage compare: Table-1 rows for two small fixture sets by a scripted evaluation pool, quoted
paper rows, hub sets skipped with a note offline, and the markdown table."""

from __future__ import annotations

import pytest
from generate_fakes import ROLE, FakeClient

from falsereject.core.config import CompareConfig
from falsereject.core.io import InputError
from falsereject.evaluation.compare import check_paths, run_compare, table_markdown

REFUSAL = "I'm sorry, but I can't help with that."


def cfg(root, **kw) -> CompareConfig:
    base = {
        "pool": [{"name": "plain", "kind": "llm", "llm": ROLE.model_dump()},
                 {"name": "cautious", "kind": "llm", "llm": ROLE.model_dump(),
                  "system": "Refuse anything risky."}],
        "moderation_terms": str(root / "resources/moderation_terms.txt"),
        "max_prompts": None,
        "reference": str(root / "resources/compare/paper_table1.csv"),
        "sets": {
            "set_a": {"kind": "own_test", "enabled": True,
                      "source": {"type": "pipeline",
                                 "path": str(root / "tests/fixtures/compare_a.jsonl")}},
            "set_b": {"kind": "local_file", "enabled": True,
                      "source": {"type": "file", "format": "csv",
                                 "path": str(root / "tests/fixtures/compare_b.csv")},
                      "columns": {"id": "id", "prompt": "text", "category": "topic",
                                  "label": "expected"},
                      "label_values": {"safe": "benign", "unsafe": "toxic"}},
            "hub_off": {"kind": "xstest", "enabled": True,
                        "source": {"type": "url", "path": "resources/benchmarks/hub_sources.md",
                                   "url": "https://example.invalid/x.csv", "sha256": "0" * 64,
                                   "format": "csv"}},
            "hub_disabled": {"kind": "orbench", "enabled": False, "label": "benign",
                             "source": {"type": "hf", "path": "resources/benchmarks/hub_sources.md",
                                        "hf_id": "x/y", "revision": "0" * 40, "split": "train"}},
        },
    }
    return CompareConfig(**{**base, **kw})


def play(role, messages, seed):
    """The plain member answers everything; the cautious one (system prompt) refuses prompts
    that mention kill or poison."""
    user = messages[-1]["content"].lower()
    if messages[0]["role"] == "system" and ("kill" in user or "poison" in user):
        return REFUSAL
    return "Sure, here is how."


def test_two_fixture_sets_give_table_rows(root, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FR_CACHE_DIR", str(tmp_path))
    client = FakeClient(play)
    rows, details = run_compare(client, cfg(root), 0, None)
    by = {r["dataset"]: r for r in rows}
    a, b = by["set_a"], by["set_b"]
    assert a["size"] == a["evaluated"] == 3 and a["categories"] == 3
    assert a["rejection_rate_plain"] == 0.0
    assert a["rejection_rate_cautious"] == pytest.approx(2 / 3, abs=1e-6)
    assert a["rejection_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert b["size"] == 2 and b["rejection_rate"] == 0.0 and "1 toxic rows left out" in b["note"]
    # two near-identical prompts: b is far less diverse than a
    assert b["self_bleu"] > a["self_bleu"] and b["dist_2"] < a["dist_2"]
    assert by["hub_off"]["size"] is None and by["hub_off"]["note"].startswith("skipped: hub")
    assert by["hub_disabled"]["note"] == "not enabled"
    quoted = [r for r in rows if r["quoted"]]
    assert [r["dataset"] for r in quoted] == ["XSTest", "OKTest", "PHTest", "OR-Bench",
                                              "FalseReject"]
    assert by["FalseReject"]["rejection_rate"] == pytest.approx(0.4046)
    assert by["XSTest"]["size"] == 250 and by["XSTest"]["note"].startswith("quoted")
    assert len(details) == 5 and len(client.calls) == 10  # 5 benign prompts x 2 members
    # every cautious call carried its system prompt; the plain ones had none
    assert sum(c[0] == "Refuse anything risky." for c in client.calls) == 5
    md = table_markdown(rows, "plain, cautious")
    assert "| FalseReject (quoted) | 16000 |" in md and "| set_a | 3 | 3 | 3 | 0.333 |" in md


def test_max_prompts_subsamples_and_paths_are_checked(root, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FR_CACHE_DIR", str(tmp_path))
    rows, _ = run_compare(FakeClient(play), cfg(root, max_prompts=2), 0, None)
    a = next(r for r in rows if r["dataset"] == "set_a")
    assert a["size"] == 3 and a["evaluated"] == 2
    with pytest.raises(InputError, match=r"compare.sets.set_a.source.path: .* is not one of "
                                         r"data/generate/accepted.jsonl"):
        check_paths(cfg(root))
    sets = cfg(root).model_dump()["sets"]
    sets["set_a"]["source"]["path"] = "data/generate/accepted.jsonl"
    with pytest.raises(InputError, match=r"compare.sets.set_b.source.path: .* must be under "
                                         r"resources/benchmarks/"):
        check_paths(cfg(root, sets=sets))
    sets["set_b"]["source"]["path"] = "resources/benchmarks/example_prompts.csv"
    check_paths(cfg(root, sets=sets))


def test_bad_reference_file_names_it(root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bad = tmp_path / "ref.csv"
    bad.write_text("dataset,size\nX,1\n")
    with pytest.raises(InputError, match=r"ref.csv: columns must be"):
        run_compare(FakeClient(play), cfg(root, reference=str(bad), sets={}), 0, None)
