"""Guarantee: parallel workers (e.g. `dvc queue start -j 2` over one shared LLM cache) never tear,
lose or cross-serve cache entries. Two processes write the same cache at once, overlapping on
half their requests; every entry is whole, sits under its own key, holds the answer to its own
request, and a third process is served every answer from the cache without a call."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from falsereject.llm.cache import KEY_FIELD, DiskCache, cache_key
from falsereject.testing.server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, random, sys
from falsereject.core.config import RoleModel
from falsereject.llm import ChatResult, LLMClient
name, order_seed, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
role = RoleModel(model="openai/test-model", temperature=0.0, top_p=1.0, max_tokens=16,
                 api_base_env="FR_TEST_API_BASE", api_key_env="FR_TEST_API_KEY")
ids = list(range(first, last))
random.Random(order_seed).shuffle(ids)  # the shared half is written in another order
client = LLMClient(name)
results = client.chat_many(role, [[{"role": "user", "content": f"question {i}"}] for i in ids],
                           seed=7)
s = client.ledger.summary()
print(json.dumps({"texts": {i: r.text for i, r in zip(ids, results) if isinstance(r, ChatResult)},
                  "failed": sum(not isinstance(r, ChatResult) for r in results),
                  "api_calls": s["api_calls"], "cache_hits": s["cache_hits"]}))
"""


def expected_text(i: int) -> str:
    """What the test server's default responder answers to `question i` with seed 7."""
    body = {"messages": [{"role": "user", "content": f"question {i}"}], "seed": 7}
    digest = hashlib.sha256(json.dumps([body["messages"], body["seed"]], sort_keys=True)
                            .encode()).hexdigest()[:8]
    return f"Here is a helpful and complete answer ({digest})."


def worker(name: str, order_seed: int, first: int, last: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, name, str(order_seed), str(first),
                             str(last)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_two_processes_share_one_cache_without_torn_lost_or_crossed_entries(tmp_path):
    cache = tmp_path / "cache"
    with FakeOpenAIServer(latency_s=0.005) as srv:
        env = {**os.environ, "FR_LLM_CACHE_DIR": str(cache), "FR_TEST_API_BASE": srv.base_url,
               "FR_TEST_API_KEY": "sk-test", "FR_LLM_CONCURRENCY": "32",
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        # worker a: 0..299, worker b: 150..449 -> 150 requests both make at the same time
        a, b = worker("a", 1, 0, 300, env), worker("b", 2, 150, 450, env)
        ra, rb = finish(a), finish(b)
        assert ra["failed"] == rb["failed"] == 0
        for r in (ra, rb):
            assert all(text == expected_text(int(i)) for i, text in r["texts"].items())

        # on disk: one whole entry per distinct request, under its own key, answering it
        files = [p for p in cache.rglob("*.json")]
        assert not [p for p in cache.rglob(".tmp-*")]  # no temp file left behind
        assert len(files) == 450
        by_text = {expected_text(i): i for i in range(450)}
        seen = set()
        for path in files:
            entry = json.loads(path.read_text(encoding="utf-8"))  # torn JSON would fail here
            assert entry[KEY_FIELD] == path.stem
            seen.add(by_text[entry["text"]])
        assert seen == set(range(450))

        # a third worker over everything: all from the cache, each the right answer
        before = srv.request_count
        rc = finish(worker("c", 3, 0, 450, env))
        assert srv.request_count == before
        assert rc["api_calls"] == 0 and rc["cache_hits"] == 450
        assert all(text == expected_text(int(i)) for i, text in rc["texts"].items())


def test_an_entry_under_the_wrong_key_is_a_miss_with_a_warning(tmp_path, caplog):
    cache = DiskCache(tmp_path)
    k1, k2 = cache_key({"q": 1}), cache_key({"q": 2})
    cache.put(k1, {"text": "answer to 1"})
    assert cache.get(k1) == {"text": "answer to 1"}  # the key field is not handed out
    wrong = cache._path(k2)
    wrong.parent.mkdir(parents=True, exist_ok=True)
    wrong.write_bytes(cache._path(k1).read_bytes())  # a misplaced entry
    with caplog.at_level(logging.WARNING):
        assert cache.get(k2) is None
    assert "another request" in caplog.text
    cache._path(k1).write_text('{"text": "answer to', encoding="utf-8")  # torn by hand
    with caplog.at_level(logging.WARNING):
        assert cache.get(k1) is None
    assert "corrupt" in caplog.text
    cache.put(k1, {"text": "again"})
    assert cache.get(k1) == {"text": "again"}
