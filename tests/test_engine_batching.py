"""The embedded engine's batching loop, with a stand-in for the model: requests are batched,
and one request that breaks generation fails alone instead of taking its batch with it."""

from __future__ import annotations

from concurrent.futures import wait

import pytest

from falsereject.llm.local import batching as localmodel
from falsereject.llm.local.engine import Engine, GenRequest, GenResult, LocalSpec


class FakeEngine(Engine):
    def generate(self, reqs: list[GenRequest]) -> list[GenResult]:
        self.batch_sizes.append(len(reqs))
        if any("boom" in m[1] for r in reqs for m in r.messages):
            raise RuntimeError("index out of range in self-attention")
        return [GenResult(r.messages[-1][1].upper(), 1, 1, "stop") for r in reqs]


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.setattr(localmodel, "load", lambda spec: (None, None))
    eng = FakeEngine("fake", LocalSpec(path="."), batch_size=8, wait_ms=50)
    eng.batch_sizes = []
    yield eng
    eng.close()


def req(text: str) -> GenRequest:
    return GenRequest.build([{"role": "user", "content": text}], max_tokens=4)


def test_concurrent_requests_share_a_batch(engine):
    futures = [engine.submit(req(f"q{i}")) for i in range(8)]
    wait(futures, timeout=10)
    assert [f.result().text for f in futures] == [f"Q{i}" for i in range(8)]
    assert engine.batch_sizes == [8]


def test_a_bad_request_fails_alone(engine):
    futures = [engine.submit(req(t)) for t in ("a", "boom", "c", "d")]
    wait(futures, timeout=10)
    assert isinstance(futures[1].exception(), RuntimeError)
    assert [futures[i].result().text for i in (0, 2, 3)] == ["A", "C", "D"]
    assert engine.batch_sizes == [4, 1, 1, 1, 1]
    assert engine.submit(req("after")).result(timeout=10).text == "AFTER"  # still serving
