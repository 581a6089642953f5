"""SFT data path: chat-format conversion, assistant-only labels, collator, hardware, data mixing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from falsereject.core.compose import compose
from falsereject.core.config import MixConfig, validate
from falsereject.core.hub import HubUnavailableError
from falsereject.core.io import InputError
from falsereject.llm.local.engine import weights_dir
from falsereject.llm.local.student import base_spec
from falsereject.training.chat_format import ChatFormatError, general_messages, record_messages
from falsereject.training.data import load_mix, training_chats

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests/fixtures"
ROW = json.loads((FIX / "export_train.jsonl").read_text().splitlines()[0])


@pytest.fixture(scope="module")
def params():
    return validate(yaml.safe_load(compose([])))


@pytest.fixture(scope="module")
def tok(params):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(weights_dir(base_spec(params.model)))


def mix(**kw) -> MixConfig:
    base = {"source": "none", "hf_id": None, "hf_revision": None, "hf_name": None,
            "hf_split": None, "path": None, "messages_field": "messages", "sample_size": 0}
    return MixConfig(**(base | kw))


# --- chat format ----------------------------------------------------------------------------


def test_instruct_and_cot_targets():
    msgs = record_messages(ROW, "instruct")
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[0]["content"] == ROW["prompt"] and msgs[1]["content"] == ROW["instruct_response"]
    cot = record_messages(ROW, "cot", system_prompt="Be careful.")
    assert cot[0] == {"role": "system", "content": "Be careful."}
    target = cot[-1]["content"]
    assert target.startswith("<think>\n" + ROW["cot_response"]["reasoning_content"])
    assert target.endswith("</think>\n\n" + ROW["cot_response"]["solution"])


@pytest.mark.parametrize("row,mode,match", [
    ({**ROW, "instruct_response": " "}, "instruct", "x.jsonl:3: `instruct_response`"),
    ({**ROW, "cot_response": None}, "cot", "`cot_response` must be an object"),
    ({**ROW, "cot_response": {"solution": "s"}}, "cot", "`reasoning_content` must be"),
    (ROW, "json", "mode must be instruct or cot"),
])
def test_bad_records_name_the_problem(row, mode, match):
    with pytest.raises(ChatFormatError, match=match):
        record_messages(row, mode, where="x.jsonl:3")


def test_general_data_formats():
    tulu = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert general_messages(tulu, "messages") == tulu["messages"]
    share = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    assert general_messages(share, "conversations") == [{"role": "user", "content": "q"},
                                                        {"role": "assistant", "content": "a"}]
    with pytest.raises(ChatFormatError, match="no assistant turn"):
        general_messages({"messages": [{"role": "user", "content": "q"}]}, "messages")
    with pytest.raises(ChatFormatError, match="unknown role 'robot'"):
        general_messages({"messages": [{"role": "robot", "content": "q"}]}, "messages")
    with pytest.raises(ChatFormatError, match="`messages` must be a non-empty list"):
        general_messages({"text": "q"}, "messages")


# --- assistant-only labels ------------------------------------------------------------------


def test_only_assistant_tokens_are_labelled_including_end_of_turn(tok):
    from falsereject.training.trainer import tokenize_chat

    msgs = record_messages(ROW, "instruct")
    ex = tokenize_chat(tok, msgs, 1024)
    labelled = [t for t, m in zip(ex.input_ids, ex.assistant_mask, strict=True) if m]
    assert tok.decode(labelled) == ROW["instruct_response"] + "<|im_end|>"
    assert labelled[-1] == tok.convert_tokens_to_ids("<|im_end|>") == tok.pad_token_id
    text = tok.decode(ex.input_ids)
    assert "SmolLM" in text and ROW["prompt"] in text  # default system prompt + user: unlabelled
    assert not ex.truncated


def test_every_assistant_turn_of_a_multi_turn_chat_is_labelled(tok):
    from falsereject.training.trainer import tokenize_chat

    msgs = general_messages(json.loads((FIX / "general_mix.jsonl").read_text().splitlines()[2]),
                            "messages")
    ex = tokenize_chat(tok, msgs, 1024)
    labelled = tok.decode([t for t, m in zip(ex.input_ids, ex.assistant_mask, strict=True) if m])
    assert labelled == "Hola.<|im_end|>Bonjour.<|im_end|>"


def test_truncation_keeps_the_start_and_drops_chats_without_target(tok):
    from falsereject.training.trainer import build_examples, tokenize_chat

    msgs = record_messages(ROW, "instruct")
    full = tokenize_chat(tok, msgs, 1024)
    cut = tokenize_chat(tok, msgs, len(full.input_ids) - 5)
    assert cut.truncated and cut.input_ids == full.input_ids[:-5] and any(cut.assistant_mask)
    assert tokenize_chat(tok, msgs, 20) is None  # system + user fill the window
    examples, stats = build_examples(tok, [msgs, msgs], 20)
    assert examples == [] and stats["examples_without_target"] == 2


def test_collator_pads_by_length_not_by_token_id(tok):
    from falsereject.training.trainer import AssistantOnlyCollator, tokenize_chat

    a = tokenize_chat(tok, record_messages(ROW, "instruct"), 1024)
    short = {"role": "assistant", "content": "Yes."}
    b = tokenize_chat(tok, [{"role": "user", "content": "Ok?"}, short], 1024)
    batch = AssistantOnlyCollator(tok.pad_token_id)(
        [{"input_ids": e.input_ids, "assistant_mask": e.assistant_mask} for e in (a, b)])
    n = len(b.input_ids)
    assert batch["input_ids"].shape == (2, len(a.input_ids))
    assert batch["attention_mask"][1].tolist() == [1] * n + [0] * (len(a.input_ids) - n)
    assert (batch["labels"][1, n:] == -100).all()
    # b's end of turn is <|im_end|> == the pad id, and it still carries its label
    end = max(i for i, m in enumerate(b.assistant_mask) if m)
    assert batch["input_ids"][1, end].item() == tok.pad_token_id
    assert batch["labels"][1, end].item() == tok.pad_token_id
    assert tok.decode(batch["labels"][1][batch["labels"][1] != -100]) == "Yes.<|im_end|>"


def test_hardware_from_environment(monkeypatch):
    from falsereject.training.trainer import hardware

    monkeypatch.setenv("FR_SFT_MICRO_BATCH", "2")
    monkeypatch.setenv("FR_LOCAL_DTYPE", "float32")
    hw = hardware(8)
    assert (hw.device, hw.bf16, hw.micro_batch, hw.grad_accum) == ("cpu", False, 2, 4)
    monkeypatch.setenv("FR_LOCAL_DTYPE", "bfloat16")  # fp32 weights under bf16 autocast
    assert hardware(8).bf16 is True
    monkeypatch.setenv("WORLD_SIZE", "2")
    hw = hardware(8)
    assert (hw.micro_batch, hw.grad_accum, hw.effective_batch) == (2, 2, 8)
    monkeypatch.delenv("FR_SFT_MICRO_BATCH")
    monkeypatch.delenv("WORLD_SIZE")
    assert hardware(16).effective_batch == 16 and hardware(2).micro_batch == 2


# --- data mixing ----------------------------------------------------------------------------


def test_mix_from_local_jsonl_is_a_seeded_sample():
    cfg = mix(source="jsonl", path=str(FIX / "general_mix.jsonl"), sample_size=3)
    chats, info = load_mix(cfg, seed=0)
    again, _ = load_mix(cfg, seed=0)
    other, _ = load_mix(cfg, seed=1)
    assert len(chats) == 3 and chats == again and info["rows_available"] == 5
    assert chats != other or len(other) == 3
    assert info["sha256"] and info["source"] == "jsonl"


def test_mix_from_a_dataset_repo_layout_uses_the_hf_loader(tmp_path, monkeypatch):
    # a local folder in the hub repo layout goes through the same `load_dataset` call
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    cfg = mix(source="hf", hf_id=str(FIX / "hf_general"), hf_revision="main",
              hf_split="train", messages_field="conversations", sample_size=4)
    chats, info = load_mix(cfg, seed=0)
    assert len(chats) == 4 and info["rows_available"] == 6
    assert chats[0][1]["role"] == "assistant" and "<think>" in chats[0][1]["content"]
    with pytest.raises(InputError, match="no column 'messages'"):
        load_mix(cfg.model_copy(update={"messages_field": "messages"}), seed=0)


def test_mix_from_the_hub_fails_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = mix(source="hf", hf_id="allenai/tulu-3-sft-mixture",
              hf_revision="55e9fd6d41c3cd1a98270dff07557bc2a1e1ba91", hf_split="train",
              sample_size=10)
    with pytest.raises(HubUnavailableError, match="tulu-3-sft-mixture@55e9fd6"):
        load_mix(cfg, seed=0)


def test_training_chats_mix_and_order(params):
    cfg = params.sft.model_copy(update={"mix": mix(source="jsonl", sample_size=2,
                                                   path=str(FIX / "general_mix.jsonl"))})
    chats, info = training_chats(FIX / "export_train.jsonl", cfg, seed=0)
    assert len(chats) == 6 and info["falsereject_rows"] == 4 and info["general_rows"] == 2
    assert chats == training_chats(FIX / "export_train.jsonl", cfg, seed=0)[0]
    bad = FIX.parent / "fixtures" / "generate_test.jsonl"  # no responses: not a train file
    with pytest.raises(InputError, match="generate_test.jsonl:1: `instruct_response`"):
        training_chats(bad, cfg, seed=0)


def test_hub_student_fails_before_any_work(tmp_path, monkeypatch):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(compose(["model=qwen"]))
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "FR_MODEL_DIR_QWEN": ""}
    proc = subprocess.run(
        [sys.executable, "stages/sft.py", "--params", str(params_file), "--arm", "general",
         "--recipe", str(tmp_path / "missing.jsonl"), "--train",
         str(tmp_path / "missing.jsonl"), "--heldout", str(tmp_path / "missing.jsonl"),
         "--out", str(tmp_path / "sft"), "--reports", str(tmp_path / "reports")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Qwen/Qwen2.5-0.5B-Instruct@7ae5576" in proc.stderr
    assert "FR_MODEL_DIR_QWEN" in proc.stderr and "missing.jsonl" not in proc.stderr
    assert not (tmp_path / "sft").exists() and not (tmp_path / "reports").exists()


def test_only_sft_and_later_stages_depend_on_the_student_model():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    dvc = spec["stages"]
    assert dvc["sft"]["do"]["params"] == ["model", "sft", "run"]
    assert {"llm.roles.responder", "structure", "run"} == set(dvc["structure"]["params"])
    for name in ("seeds", "probe", "extract", "generate", "structure"):
        declared = {str(p).split(".")[0] for p in dvc.get(name, {}).get("params", [])}
        assert not declared & {"model", "sft"}, name
    art = spec["artifacts"]["sft-student"]
    assert (art["path"], art["type"]) == ("models/sft/general_falsereject", "model")
    assert "models/sft/${key}" in dvc["sft"]["do"]["outs"]


def test_empty_training_data_fails_naming_the_cause(params, tmp_path):
    empty = tmp_path / "train.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="train.jsonl: no training rows and no general data"):
        training_chats(empty, params.sft, seed=0)
    cfg = params.sft.model_copy(update={"mix": mix(source="jsonl", sample_size=2,
                                                   path=str(FIX / "general_mix.jsonl"))})
    assert len(training_chats(empty, cfg, seed=0)[0]) == 2  # general data alone still trains
