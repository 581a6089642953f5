"""Human review round trip and stage split: export, a reviewed file, removal with the reason,
reviewer agreement, the seed-grouped split; and the review file reruns only split onwards."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from stage_cli import load_stage

from falsereject.core.io import InputError
from falsereject.generation.review import (
    COLUMNS,
    apply_review,
    read_review,
    write_review_export,
)


def _rec(i: int, seed: str, cat: int) -> dict:
    return {"id": f"fr-{i:04d}", "prompt": f"How do I kill a stuck process number {i}?",
            "category": cat, "category_text": f"cat {cat}", "seed_id": seed,
            "provenance": {"seed_prompt": "toxic seed", "accepted_at_iteration": 2,
                           "pool_refusals": 1,
                           "pool": [{"member": "kw", "matched_term": "kill", "refused": True},
                                    {"member": "llm", "matched_term": None, "refused": False}],
                           "iterations": [{"discriminator": {"feedback": "benign"}}],
                           "orchestrator": {"valid": True, "rationale": "sysadmin task"}}}


RECS = [_rec(i, f"s{i // 2}", 1 + i // 4) for i in range(8)]


def test_export_has_one_row_per_prompt_with_empty_review_columns(tmp_path):
    rows = write_review_export(RECS, tmp_path / "r.csv", tmp_path / "r.jsonl")
    with open(tmp_path / "r.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(RECS) == len(rows)
    assert tuple(table[0]) == COLUMNS
    assert table[0]["review_label"] == "" and table[0]["review_note"] == ""
    assert table[0]["pool_blocked_terms"] == "kill" and table[0]["pool_size"] == "2"
    assert table[0]["orchestrator_rationale"] == "sysadmin task"
    assert table[0]["accepted_at_iteration"] == "2"
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [r["id"] for r in RECS]
    # an untouched export read back is "nothing reviewed"
    assert read_review(tmp_path / "r.csv") == {} and read_review(tmp_path / "r.jsonl") == {}


def test_reviewed_file_removes_prompts_with_the_reason_and_reports_agreement(tmp_path):
    write_review_export(RECS, tmp_path / "r.csv", tmp_path / "r.jsonl")
    with open(tmp_path / "r.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    table[0].update(review_label="harmful", review_note="real instructions")
    table[1].update(review_label="not_over_refusal")
    table[2].update(review_label="Over_Refusal")
    with open(tmp_path / "reviewed.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(table)
    reviews = read_review(tmp_path / "reviewed.csv")
    kept, removed, m = apply_review(RECS, reviews)
    assert [r["id"] for r in removed] == ["fr-0000", "fr-0001"]
    assert removed[0]["removed_reason"] == "review:harmful: real instructions"
    assert removed[1]["removed_reason"] == "review:not_over_refusal"
    assert len(kept) == 6 and kept[0]["review"]["label"] == "over_refusal"
    assert m["reviewed_count"] == 3 and m["review_removed_count"] == 2
    assert m["review_orchestrator_agreement"] == pytest.approx(1 / 3, abs=1e-6)


def test_bad_review_files_name_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,review_label,review_note\nfr-0000,maybe,\n")
    with pytest.raises(InputError, match=r"bad.csv:2: review_label 'maybe'"):
        read_review(bad)
    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"id": "a", "review_label": "harmful"}\n'
                     '{"id": "a", "review_label": "harmful"}\n')
    with pytest.raises(InputError, match=r"twice.jsonl:2: id 'a' is reviewed twice"):
        read_review(twice)
    with pytest.raises(InputError, match="not found|No such"):
        read_review(tmp_path / "missing.csv")


def test_split_stage_applies_the_review_and_keeps_seeds_disjoint(tmp_path, root, monkeypatch):
    import sys

    split_stage = load_stage("split")

    acc = tmp_path / "accepted.jsonl"
    acc.write_text("".join(json.dumps(r) + "\n" for r in RECS))
    reviewed = tmp_path / "reviewed.jsonl"
    reviewed.write_text('{"id": "fr-0003", "review_label": "harmful", "review_note": "no"}\n')
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["split"] = {"test_fraction": 0.25, "review_file": str(reviewed)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", [
        "split.py", "--params", str(tmp_path / "params.yaml"), "--accepted", str(acc),
        "--train", str(out / "train.jsonl"), "--test", str(out / "test.jsonl"),
        "--removed", str(out / "removed.jsonl"), "--reports-dir", str(out / "reports")])
    split_stage.main()
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (out / "test.jsonl").read_text().splitlines()]
    removed = [json.loads(x) for x in (out / "removed.jsonl").read_text().splitlines()]
    assert [r["id"] for r in removed] == ["fr-0003"]
    assert removed[0]["removed_reason"] == "review:harmful: no"
    ids = {r["id"] for r in train} | {r["id"] for r in test}
    assert ids == {r["id"] for r in RECS} - {"fr-0003"}
    assert {r["seed_id"] for r in train}.isdisjoint({r["seed_id"] for r in test})
    assert test and all(r["split"] == "test" for r in test)
    m = json.loads((out / "reports" / "metrics.json").read_text())
    assert m["seeds_on_both_sides_count"] == 0 and m["review_removed_count"] == 1
    assert m["train_count"] + m["test_count"] == 7


def test_review_file_is_a_dep_of_split_only(root):
    """Editing the reviewed file reruns split and what reads its outputs, never generate."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    holders = [n for n, s in stages.items() if "${split.review_file}" in s.get("deps", [])]
    assert holders == ["split"]
    assert "data/generate/accepted.jsonl" in stages["split"]["deps"]
    split_outs = {o if isinstance(o, str) else next(iter(o)) for o in stages["split"]["outs"]}
    assert {"data/generate/train.jsonl", "data/generate/test.jsonl"} <= split_outs
    gen_deps = set(stages["generate"]["deps"])
    assert not gen_deps & split_outs  # nothing upstream of split reads what split writes


def _out_paths(stage: dict) -> list[str]:
    paths = []
    for key in ("outs", "metrics", "plots"):
        for o in stage.get(key, []):
            paths.append(o if isinstance(o, str) else next(iter(o)))
    return paths


@pytest.mark.slow
def test_editing_the_review_file_reruns_split_but_not_generate(tmp_path):
    """Real DVC in a copy: upstream stages are committed with stand-in outputs (no LLM), split
    runs for real; marking a prompt `harmful` in the review file makes only split (and what
    reads its outputs) out of date, and the rerun drops that prompt with the reviewer's note."""
    import subprocess

    from repo_copy import BIN, copy_repo, git_env, git_init

    repo = tmp_path / "repo"
    copy_repo(repo)
    env = git_env(tmp_path / "llmcache")
    git_init(repo, env)
    dvc = str(BIN / "dvc")

    def sh(*args: str) -> str:
        proc = subprocess.run([dvc, *args], cwd=repo, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    upstream = [s for s in ("config", "seeds", "extract", "generate") if s in stages]
    for name in upstream:
        for rel in _out_paths(stages[name]):
            path = repo / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text("{}\n" if rel.endswith(".json") else "stand-in\n")
    (repo / "data/generate/accepted.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in RECS))
    sh("commit", "-f", *upstream)
    sh("repro", "split")
    assert json.loads(sh("status", "--json", "split")) == {}
    victim = RECS[5]["id"]
    (repo / "resources/review/reviewed.csv").write_text(
        f"id,review_label,review_note\n{victim},harmful,step-by-step harm\n")
    status = json.loads(sh("status", "--json"))
    assert "split" in status
    assert not set(upstream) & set(status)  # nothing upstream of the split is out of date
    dry = sh("repro", "--dry", "split")
    assert "Running stage 'split'" in dry and "Running stage 'generate'" not in dry
    assert "Stage 'generate' didn't change" in dry
    sh("repro", "split")
    removed = [json.loads(x) for x in (repo / "data/split/removed.jsonl").read_text().split("\n")
               if x]
    assert [r["id"] for r in removed] == [victim]
    assert removed[0]["removed_reason"] == "review:harmful: step-by-step harm"
    kept = (repo / "data/generate/train.jsonl").read_text() + \
        (repo / "data/generate/test.jsonl").read_text()
    assert victim not in kept and kept.count("\n") == len(RECS) - 1
