"""Stage `structure`: think splitter, heading parser, four-part checker, regeneration, drops."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from falsereject.core.compose import compose
from falsereject.core.config import RoleModel, validate
from falsereject.core.io import InputError
from falsereject.core.records import Prompt, read_records
from falsereject.llm import LLMCallError
from falsereject.responses.pipeline import run_structure
from falsereject.responses.responder import plan_units, structure_records
from falsereject.responses.structured import (
    check_answer,
    evaluate_part,
    evaluate_single,
    load_templates,
    parse_headed,
    split_reasoning,
    split_think,
    trim_to_sentence,
    unit_seed,
)

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "prompts/structure/responder_v1.yaml"
FIX = ROOT / "tests/fixtures"
ROLE = RoleModel(model="fake/responder", temperature=0.0, top_p=1.0, max_tokens=64,
                 api_base_env=None, api_key_env=None)


def read_prompts(path):
    """What stage `structure` reads: accepted prompts, unique ids, sorted by id."""
    return read_records(path, Prompt, unique="id", sort_by="id")


@pytest.fixture(scope="module")
def params():
    return validate(yaml.safe_load(compose([])))


def cfg_with(params, **kw):
    return params.structure.model_copy(update=kw)


# --- fakes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    text: str
    reasoning: str | None = None
    finish_reason: str = "stop"
    model: str = "fake/responder"


GOOD = {
    "acknowledge": "This question can be asked for safety reasons or, rarely, to cause harm.",
    "safe_answer": "To stop a hung process on Linux, find its id with ps or top and send it "
                   "SIGTERM with kill, then SIGKILL with kill -9 if it does not exit.",
    "caution": "Killing processes you do not own can disrupt other people's work; ask your "
               "system administrator if you are unsure.",
    "closing": "Let me know if you want help with a specific case.",
    "safe_reading": "The user wants to manage a stuck program on their own server.",
    "unsafe_reading": "Someone could try to disrupt services they do not control.",
    "plan": "Explain ps and kill, then warn about shared systems and admins.",
}


def part_of(messages: list[dict], t) -> str:
    user = messages[-1]["content"]
    for part, tpl in t.per_part.items():
        if user.endswith(tpl.split("$prompt")[-1]):
            return part
    raise AssertionError(f"unknown part prompt: {user!r}")


class FakeClient:
    """Answers each part well unless `bad(part, attempt_seed)` says otherwise."""

    def __init__(self, t, bad=lambda part, seed, n: None):
        self.t, self.bad, self.calls, self.seeds = t, bad, [], {}

    async def achat(self, role, messages, *, json_schema=None, max_tokens=None,
                    temperature=None, seed=None):
        part = part_of(messages, self.t)
        n = self.seeds.setdefault(part + messages[-1]["content"], [])
        n.append(seed)
        self.calls.append((part, seed, temperature))
        out = self.bad(part, seed, len(n))
        if isinstance(out, BaseException):
            raise out
        return out or Result(GOOD[part])


# --- <think> splitting and reasoning_content ------------------------------------------------


def test_split_think_variants():
    s = split_think("<think>\nsafe vs unsafe\n</think>\n\nThe answer.")
    assert (s.reasoning, s.answer, s.closed) == ("safe vs unsafe", "The answer.", True)
    s = split_think("template opened it already</think>answer")  # no opening tag
    assert (s.reasoning, s.answer) == ("template opened it already", "answer")
    s = split_think("<think>a</think> mid <think>b</think>final")  # several blocks
    assert s.answer == "final" and "a" in s.reasoning and "b" in s.reasoning
    s = split_think("<think>still thinking when the tokens ran out")
    assert s.closed is False and s.answer == "" and s.reasoning.startswith("still")
    s = split_think("plain answer")
    assert (s.reasoning, s.answer, s.closed) == (None, "plain answer", True)
    assert split_think("<THINK>x</Think>y").answer == "y"


def test_reasoning_field_wins_over_inline_think():
    s = split_reasoning("<think>inline</think>answer", "native trace")
    assert (s.reasoning, s.answer) == ("native trace", "answer")
    assert split_reasoning("<think>inline</think>answer", "  ").reasoning == "inline"


# --- parsing and the checker ----------------------------------------------------------------


def test_parse_headed_tolerates_markdown_and_orders_parts():
    heads = {"acknowledge": "Readings", "safe_answer": "Answer", "caution": "Caution",
             "closing": "Closing"}
    text = ("Intro line.\n## Readings\nTwo readings.\n**Answer:** The safe answer.\n"
            "Answer the next part below\nCaution: Be careful.\n### Closing:\nBye.")
    parts, missing = parse_headed(text, heads)
    assert missing is None
    assert parts["acknowledge"] == "Two readings."
    assert parts["safe_answer"].startswith("The safe answer.")  # "Answer the ..." is body text
    assert parts["caution"] == "Be careful." and parts["closing"] == "Bye."
    _, missing = parse_headed("Readings: a\nCaution: b\nClosing: c", heads)
    assert missing == "missing_part:safe_answer"
    _, missing = parse_headed("Closing: c\nReadings: a\nAnswer: x\nCaution: b", heads)
    assert missing == "missing_part:closing"  # out of order


def test_checker_passes_good_and_names_each_failure(params):
    cfg = params.structure
    good = {p: GOOD[p] for p in ("acknowledge", "safe_answer", "caution", "closing")}
    assert check_answer(good, cfg) is None
    assert check_answer({**good, "caution": ""}, cfg) == "empty:caution"
    assert check_answer({k: v for k, v in good.items() if k != "closing"}, cfg) == \
        "empty:closing"
    assert check_answer({**good, "acknowledge": "Two readings."}, cfg) == \
        "too_short:acknowledge"
    refusal = "I'm sorry, but I can't help with that request. It violates my guidelines."
    assert check_answer({**good, "safe_answer": refusal}, cfg) == "refusal"
    loop = "kill the process " * 20
    assert check_answer({**good, "safe_answer": loop}, cfg) == "repetitive:safe_answer"
    strict = cfg_with(params, require_resource_pointer=True)
    assert check_answer(good, strict) is None  # "system administrator"
    no_help = {**good, "caution": "Killing other people's processes can disrupt their work "
                                  "and lose data."}
    assert check_answer(no_help, strict) == "no_resource_pointer"
    assert check_answer(no_help, cfg) is None


def test_truncated_part_is_trimmed_to_a_sentence_or_rejected(params):
    cfg = params.structure
    text = GOOD["safe_answer"] + " Another sentence that was cut off in the mid"
    out = evaluate_part("safe_answer", text, None, "length", cfg)
    assert out.reason is None and out.trimmed and out.value == GOOD["safe_answer"]
    out = evaluate_part("safe_answer", "one long run-on clause without an end in sight and",
                        None, "length", cfg)
    assert out.reason == "truncated:safe_answer"
    out = evaluate_part("safe_answer", text, None, "length", cfg_with(params,
                                                                     trim_truncated=False))
    assert out.reason == "truncated:safe_answer"
    assert trim_to_sentence('He said "stop." Then') == 'He said "stop."'


def test_part_strips_quotes_and_reasoning_trace(params):
    out = evaluate_part("closing", '<think>be nice</think>"Feel free to ask me anything else!"',
                        None, "stop", params.structure)
    assert out.value == "Feel free to ask me anything else!"


def test_single_response_with_reasoning_sources(params):
    t = load_templates(PROMPTS)
    cfg = params.structure
    body = "\n".join(f"{t.headings[p]}: {GOOD[p]}"
                     for p in ("acknowledge", "safe_answer", "caution", "closing"))
    out = evaluate_single("instruct", body, None, "stop", t, cfg)
    assert out.reason is None and out.value["closing"] == GOOD["closing"]
    think = f"<think>{GOOD['safe_reading']} {GOOD['plan']}</think>\n{body}"
    out = evaluate_single("cot", think, None, "stop", t, cfg)
    assert out.reason is None and out.value["reasoning"].startswith("The user wants")
    out = evaluate_single("cot", body, "Native reasoning trace from the provider field.",
                          "stop", t, cfg)
    assert out.value["reasoning"].startswith("Native")
    assert evaluate_single("cot", body, None, "stop", t, cfg).reason == "missing_reasoning"
    assert evaluate_single("instruct", body, None, "length", t, cfg).reason == "truncated"
    assert evaluate_single("cot", "<think>cut", None, "stop", t, cfg).reason == "truncated"
    refusal = "I'm sorry, but I can't help with that."
    assert evaluate_single("instruct", refusal, None, "stop", t, cfg).reason == "refusal"


def test_templates_validation(tmp_path):
    t = load_templates(PROMPTS)
    assert t.version == "responder_v1" and len(t.sha256) == 16
    data = yaml.safe_load(PROMPTS.read_text())
    del data["per_part"]["answer"]["caution"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"bad.yaml: missing key.*answer\.caution"):
        load_templates(bad)
    data = yaml.safe_load(PROMPTS.read_text())
    data["per_part"]["answer"]["closing"] = "No placeholder $here"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"per_part.answer.closing.*never uses \$prompt"):
        load_templates(bad)


# --- regeneration, drops, provenance --------------------------------------------------------


def _records(n=3):
    return read_prompts(FIX / "generate_train.jsonl")[:n]


def test_all_good_keeps_every_record_with_provenance(params):
    t = load_templates(PROMPTS)
    recs = _records(3)
    client = FakeClient(t)
    res = __import__("asyncio").run(structure_records(client, ROLE, recs, t, params.structure,
                                                      0))
    assert [r["id"] for r in res.kept] == sorted(r["id"] for r in recs) and not res.dropped
    r = res.kept[0]
    assert r["instruct_response"].split("\n\n")[0] == GOOD["acknowledge"]
    assert r["cot_response"]["solution"] == r["instruct_response"]  # cot_answer=reuse_instruct
    assert r["cot_response"]["reasoning_content"].startswith(GOOD["safe_reading"])
    prov = r["provenance"]["structure"]
    assert prov["responder_model"] == "fake/responder" and prov["prompts_version"]
    assert prov["attempts"] == len(plan_units(recs[0], t, params.structure)) == 7
    assert r["provenance"]["seed_id"] == recs[0]["seed_id"]


def test_failed_parts_are_regenerated_with_new_seeds_then_dropped(params):
    t = load_templates(PROMPTS)
    cfg = params.structure  # max_attempts 3, retry_min_temperature 0.7
    recs = _records(2)
    bad_prompt = recs[1]["prompt"]

    def bad(part, seed, n):
        if part == "caution" and n == 1:
            return Result("Too short.")  # first try fails, the regeneration passes
        if part == "plan":
            return LLMCallError("timeout", "slow", "fake/responder")
        return None

    client = FakeClient(t, bad)
    import asyncio

    res = asyncio.run(structure_records(client, ROLE, recs, t, cfg, 0))
    assert not res.kept and len(res.dropped) == 2
    assert {d["reason"] for d in res.dropped} == {"cot:llm_error:timeout"}
    assert res.failures["instruct:too_short:caution"] == 2
    assert res.failures["cot:llm_error:timeout"] == 2 * cfg.max_attempts
    caution = [(s, temp) for p, s, temp in client.calls if p == "caution"]
    assert len({s for s, _ in caution}) == 4  # 2 records x 2 attempts, all seeds distinct
    assert sorted(temp for _, temp in caution) == [0.0, 0.0, 0.7, 0.7]
    assert bad_prompt in {d["prompt"] for d in res.dropped}


def test_unit_seed_is_stable_and_distinct():
    assert unit_seed(0, "a", "cot", "plan", 1) == unit_seed(0, "a", "cot", "plan", 1)
    seeds = {unit_seed(s, r, m, p, a) for s in (0, 1) for r in "ab" for m in ("instruct", "cot")
             for p in ("plan", None) for a in range(3)}
    assert len(seeds) == 48


def test_run_structure_end_to_end_with_fake(params):
    t = load_templates(PROMPTS)
    train = read_prompts(FIX / "generate_train.jsonl")
    test = read_prompts(FIX / "generate_test.jsonl")
    cfg = cfg_with(params, max_records=4, strategy="per_part")

    def bad(part, seed, n):
        return Result("I'm sorry, but I can't help with that.") if part == "safe_answer" \
            and n <= 3 and seed % 2 == 0 else None

    out = run_structure(FakeClient(t, bad), ROLE, train, test, t, cfg, 0)
    m = out["metrics"]
    assert m["train_input"] == 24 and m["train_selected"] == 4
    assert m["train_kept"] + m["train_dropped"] == 4 and m["test_exported"] == 6
    assert m["regenerations"] == m["llm_calls"] - 4 * 7
    assert sum(m["drops_by_reason"].values()) == m["train_dropped"]
    assert set(out["export_train"][0]) == {"prompt", "category", "category_text",
                                           "instruct_response", "cot_response"}
    assert set(out["export_test"][0]) == {"prompt", "category", "category_text"}
    json.dumps(out)  # everything serializable


def test_read_prompts_names_file_and_line(tmp_path):
    bad = tmp_path / "train.jsonl"
    good = (FIX / "generate_train.jsonl").read_text().splitlines()
    row = json.loads(good[0])
    row["category"] = "six"
    bad.write_text(good[1] + "\n" + json.dumps(row) + "\n")
    with pytest.raises(InputError, match=r"train.jsonl:2: `category` must be a non-empty int"):
        read_prompts(bad)
    bad.write_text(good[0] + "\n" + good[0] + "\n")
    with pytest.raises(InputError, match=r"train.jsonl:2: duplicate id"):
        read_prompts(bad)


class SingleClient:
    """Strategy single: one call per (record, mode) that returns the headed answer, with the
    reasoning in the provider's field (`native`) or in a <think> block."""

    def __init__(self, t, native: bool):
        self.t, self.native, self.calls = t, native, 0

    async def achat(self, role, messages, *, json_schema=None, max_tokens=None,
                    temperature=None, seed=None):
        self.calls += 1
        body = "\n".join(f"{self.t.headings[p]}: {GOOD[p]}"
                         for p in ("acknowledge", "safe_answer", "caution", "closing"))
        trace = f"{GOOD['safe_reading']} {GOOD['unsafe_reading']} {GOOD['plan']}"
        if self.native:
            return Result(body, reasoning=trace)
        return Result(f"<think>{trace}</think>\n{body}")


def test_cot_trace_records_how_the_reasoning_was_made(params):
    """One reasoning call where the responder can (auto -> single), stitched parts on the
    embedded model (auto -> per_part), and the record's provenance says which."""
    from falsereject.responses.responder import resolve_strategy

    t = load_templates(PROMPTS)
    recs = _records(2)
    auto = cfg_with(params, strategy="auto")
    assert resolve_strategy(auto, ROLE).strategy == "single"
    local = ROLE.model_copy(update={"model": "local/smollm2"})
    assert resolve_strategy(auto, local).strategy == "per_part"
    assert resolve_strategy(cfg_with(params, strategy="single"), local).strategy == "single"
    for native, want in ((True, "model_reasoning"), (False, "think_block")):
        client = SingleClient(t, native)
        out = run_structure(client, ROLE, recs, [], t, auto, 0)
        assert client.calls == 2 * len(recs)  # one call per record and mode: no stitching
        kept = out["structured"]
        assert len(kept) == 2 and out["metrics"]["cot_trace_counts"] == {want: 2}
        assert all(r["provenance"]["structure"]["cot_trace"] == want for r in kept)
        assert kept[0]["cot_response"]["reasoning_content"].startswith(GOOD["safe_reading"])
    out = run_structure(FakeClient(t), local, recs, [], t, auto, 0)
    assert out["metrics"]["cot_trace_counts"] == {"stitched_parts": 2}
    assert out["structured"][0]["provenance"]["structure"]["strategy"] == "per_part"
