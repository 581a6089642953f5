"""The capability stage: the team-written lm-evaluation-harness task loads offline (no hub),
maps every item to its four choices and gold index, and the metric bookkeeping is right."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from falsereject.core.compose import compose
from falsereject.core.config import validate
from falsereject.evaluation.capability import render, task_scores, with_differences

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("lm_eval")


@pytest.fixture(scope="module")
def params():
    return validate(yaml.safe_load(compose([])))


def _load_task(workdir: Path, include: Path, name: str):
    from lm_eval.tasks import TaskManager, get_task_dict

    return get_task_dict([name], TaskManager(include_path=str(include)))[name]


def test_the_local_task_loads_offline_from_the_committed_data(params, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "ds"))  # no earlier cached copy
    monkeypatch.chdir(ROOT)  # data_files are relative to the repository root, as under DVC
    cfg = params.capability
    task = _load_task(ROOT, ROOT / cfg.include_path, "capability_mc")
    docs = list(task.test_docs())
    items = [json.loads(line) for f in sorted((ROOT / cfg.data_path).glob("*.jsonl"))
             for line in f.read_text().splitlines() if line.strip()]
    assert len(docs) == len(items) >= 100
    by_q = {i["question"]: i for i in items}
    for doc in docs[:20]:
        item = by_q[doc["question"]]
        assert task.doc_to_choice(doc) == item["choices"] and len(item["choices"]) == 4
        assert task.doc_to_target(doc) == item["answer"]
        assert task.doc_to_text(doc) == f"Question: {item['question']}\nAnswer:"
    assert task.OUTPUT_TYPE == "multiple_choice"


def test_the_task_reads_whatever_jsonl_the_data_folder_holds(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "ds"))
    data = tmp_path / "resources/experiment/capability"
    data.parent.mkdir(parents=True)
    shutil.copytree(ROOT / "tests/fixtures/experiment/capability", data)
    monkeypatch.chdir(tmp_path)
    task = _load_task(tmp_path, ROOT / "resources/capability_tasks", "capability_mc")
    assert [d["question"] for d in task.test_docs()][:2] == ["What is 2 + 2?",
                                                             "Which of these is a color?"]


def test_scores_and_differences_to_base():
    block = {"name": "capability_mc", "acc,none": 0.5, "acc_stderr,none": 0.05,
             "acc_norm,none": 0.4, "acc_norm_stderr,none": 0.04, "alias": "capability_mc"}
    assert task_scores(block) == {"acc": 0.5, "acc_stderr": 0.05, "acc_norm": 0.4,
                                  "acc_norm_stderr": 0.04}
    m = with_differences({"base": {"t": {"acc": 0.5, "acc_stderr": 0.05}},
                          "general": {"t": {"acc": 0.45, "acc_stderr": 0.05}}})
    assert m["general"]["t"]["acc_minus_base"] == pytest.approx(-0.05)
    assert "acc_minus_base" not in m["base"]["t"]
    assert "acc_stderr_minus_base" not in m["general"]["t"]
    assert "| general | t | acc | 0.450 | 0.050 | -0.050 |" in render(m)
