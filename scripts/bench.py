"""Throughput benchmarks, run by hand (`make bench`); each result is a ratio measured in one run.

    python scripts/bench.py                    # fanout, cache, embedded
    python scripts/bench.py --only fanout      # one of them (repeatable)
    python scripts/bench.py --e2e              # also the whole default `dvc repro`, cold and
                                               # no-op, in a temp copy of the repo (~15 min)

- fanout: calls/s through LLMClient -> LiteLLM against the loopback test server (its own
  process) with a fixed latency, divided by the ideal concurrency / latency, in one client
  process and in a pool of `--workers` client processes (llm/pool.py); targets >= 0.9 at
  c=64 with 200 ms and at c=256 with 1 s. Client CPU per call is printed next to the bare
  OpenAI SDK's on the same server. `FR_LLM_START_INTERVAL_MS` (default 2; 0: off) staggers
  the starts of a burst (llm/policy.py Pacer); `--rounds` sets calls = concurrency x rounds.
- cache: the `generate` stage on the embedded model, cold (empty LLM cache) then warm; target
  zero LLM calls warm and >= 50x faster (process wall time and the stage's own work time).
- embedded: 32 concurrent requests through the batching `local/` provider vs the same 32 one at
  a time; target >= 5x.
- e2e: wall time of the default `dvc repro` cold and as a no-op; targets 15 min and 15 s.

Numbers depend on what else runs on the machine: the load average is printed with them.
Results also go to --out (JSON) when given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

KEY_ENV, BASE_ENV = "FR_BENCH_API_KEY", "FR_BENCH_API_BASE"


def say(line: str) -> None:
    print(line, flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load avg {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


@contextlib.contextmanager
def server_process(latency_s: float) -> Iterator[tuple[str, int]]:
    """The test server in its own process, so its work does not share the client's GIL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "falsereject.testing.server", "--latency-s", str(latency_s),
         "--time-limit-s", "3600"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        line = proc.stdout.readline().strip()  # "serving http://127.0.0.1:PORT/v1"
        if not line.startswith("serving "):
            raise RuntimeError(f"test server did not start: {line!r}")
        yield line.split()[1], proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_checked(cmd: list[str], **kw) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:2])} failed ({proc.returncode}):\n"
                         f"{proc.stderr[-3000:]}")


def raw_sdk_cpu_ms(base: str, conc: int, n: int) -> tuple[float, float]:
    """(calls/s, client CPU ms per call) of the bare OpenAI SDK (AsyncOpenAI, no LiteLLM, no
    cache, no ledger) making the same calls at the same concurrency: the floor under ours."""
    import asyncio

    import openai

    async def batch(tag: str, count: int) -> None:
        sem = asyncio.Semaphore(conc)

        async def one(i: int) -> None:
            async with sem:
                await client.chat.completions.create(
                    model="test-model", max_tokens=16, temperature=0.0, top_p=1.0,
                    messages=[{"role": "user", "content": f"{tag} {conc} {i}"}])

        await asyncio.gather(*(one(i) for i in range(count)))

    async def go() -> tuple[float, float]:
        nonlocal client
        client = openai.AsyncOpenAI(base_url=base, api_key="sk-bench", max_retries=0)
        await batch("raw warm", conc)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await batch("raw", n)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        await client.close()
        return n / wall, cpu / n * 1000

    client = None
    return asyncio.run(go())


def bench_fanout(latency_s: float = 0.2, levels: tuple[int, ...] = (1, 16, 64),
                 workers: int = 1, rounds: int = 8) -> dict:
    """LLMClient calls/s at each concurrency over the ideal concurrency / latency. With
    `workers` > 1 the calls go through an llm.pool.ClientPool of that many client processes
    (client CPU is then summed over the workers)."""
    from falsereject.core.config import RoleModel
    from falsereject.llm import LLMCallError, LLMClient
    from falsereject.llm.pool import ClientPool

    role = RoleModel(model="openai/test-model", temperature=0.0, top_p=1.0, max_tokens=16,
                     api_base_env=BASE_ENV, api_key_env=KEY_ENV)
    out = {}
    tag = f"_w{workers}" if workers > 1 else ""
    with server_process(latency_s) as (base, server_pid):
        os.environ[BASE_ENV], os.environ[KEY_ENV] = base, "sk-bench"
        pool = ClientPool("bench", workers, use_cache=False) if workers > 1 else None
        for conc in levels:
            if pool is not None:
                pool.concurrency = conc
                client = pool
            else:
                client = LLMClient("bench", use_cache=False, concurrency=conc)
            n = max(16, conc * rounds)
            warm = [[{"role": "user", "content": f"warm {conc} {i}"}] for i in range(conc)]
            client.chat_many(role, warm)  # opens the connection pool(s)
            convs = [[{"role": "user", "content": f"q {conc} {i}"}] for i in range(n)]
            worker0 = pool.worker_cpu_s if pool else 0.0
            cpu0, t0 = time.process_time(), time.perf_counter()
            srv0 = process_cpu_s(server_pid)
            results = client.chat_many(role, convs)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            cpu += (pool.worker_cpu_s - worker0) if pool else 0.0
            srv = process_cpu_s(server_pid) - srv0
            failed = sum(isinstance(r, LLMCallError) for r in results)
            raw_rate, raw_ms = raw_sdk_cpu_ms(base, conc, n)
            rate, ideal = n / wall, conc / latency_s
            out[f"fanout_efficiency_c{conc}{tag}"] = round(rate / ideal, 3)
            out[f"fanout_client_cpu_ms_c{conc}{tag}"] = round(cpu / n * 1000, 2)
            out[f"fanout_raw_sdk_cpu_ms_c{conc}"] = round(raw_ms, 2)
            say(f"fanout c={conc:<3} latency {latency_s:g}s workers {workers}: {n} calls in "
                f"{wall:.2f}s = {rate:.1f} calls/s; ideal {ideal:.1f} -> efficiency "
                f"{rate / ideal:.2f}  (client CPU {cpu / n * 1000:.2f} ms/call vs raw OpenAI "
                f"SDK {raw_ms:.2f} ms/call, which made {raw_rate / ideal:.2f} of ideal; server "
                f"CPU {srv / n * 1000:.1f} ms/call; {failed} failed; {load()})")
        if pool is not None:
            pool.close()
    return out


def bench_embedded(n: int = 32, max_tokens: int = 64) -> dict:
    """The same n sampled requests one at a time, then all at once. `max_tokens` is about what
    the pipeline's roles write (extract answers were 80-120 tokens); with very short answers
    the prompts' prefill, which batching cannot save, dominates both timings."""
    from falsereject.core.config import RoleModel
    from falsereject.llm import LLMClient, run
    from falsereject.llm.local.engine import get_engine

    role = RoleModel(model="local/smollm2", temperature=0.7, top_p=0.95, max_tokens=max_tokens,
                     api_base_env=None, api_key_env=None)
    engine = get_engine("smollm2")  # load outside the timings
    topics = ["rivers", "bread", "chess", "volcanoes", "owls", "copper", "tides", "jazz"]
    convs = [[{"role": "user", "content": f"Say one fact about {topics[i % 8]} (#{i})."}]
             for i in range(n)]
    client = LLMClient("bench", use_cache=False, concurrency=n)
    run(client.achat(role, [{"role": "user", "content": "Hi"}], seed=n))  # LiteLLM import etc.
    t0 = time.perf_counter()
    serial = [run(client.achat(role, conv, seed=i)) for i, conv in enumerate(convs)]
    one_by_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    together_results = run(_gather_seeded(client, role, convs))
    together = time.perf_counter() - t0
    import torch

    tokens = sum(r.completion_tokens for r in serial)
    differ = sum(a.text != b.text for a, b in zip(serial, together_results, strict=True))
    same = differ == 0
    speedup = one_by_one / together
    say(f"embedded {n} requests x up to {max_tokens} tokens ({tokens} in all): one at a time "
        f"{one_by_one:.1f}s ({tokens / one_by_one:.1f} tok/s), concurrent {together:.1f}s "
        f"({tokens / together:.1f} tok/s; batch size {engine.batch_size}, "
        f"{torch.get_num_threads()} torch threads; same texts: {same}, {differ} of {n} differ) -> {speedup:.1f}x  "
        f"(target >= 5x; {load()})")
    return {"embedded_speedup_x": round(speedup, 2), "embedded_serial_s": round(one_by_one, 2),
            "embedded_concurrent_s": round(together, 2), "embedded_same_texts": same, "embedded_texts_differing": differ}


async def _gather_seeded(client, role, convs):
    import asyncio

    return await asyncio.gather(*(client.achat(role, c, seed=i) for i, c in enumerate(convs)))


def bench_cache(n_seeds: int = 4) -> dict:
    """`generate` on the embedded model, cold (empty LLM cache) then warm, on `n_seeds` seeds
    whose subgraphs `extract` makes first (its calls are not timed)."""
    from falsereject.core.compose import compose
    from falsereject.core.io import read_jsonl, write_jsonl
    from falsereject.core.taxonomy import CATEGORIES

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = read_jsonl(ROOT / "resources/seeds.jsonl")
        seeds = [{**s, "category_text": CATEGORIES[s["category"]], "source": "bench"}
                 for s in rows[:: max(1, len(rows) // n_seeds)][:n_seeds]]
        write_jsonl(tmp / "seeds.jsonl", seeds)
        (tmp / "params.yaml").write_text(compose([], ROOT / "conf"))
        env = {**os.environ, "FR_LLM_CACHE_DIR": str(tmp / "llmcache")}
        common = [sys.executable]
        extract = [*common, "stages/extract.py", "--params", str(tmp / "params.yaml"),
                   "--seeds", str(tmp / "seeds.jsonl"), "--prompt", "prompts/extract_v1.yaml",
                   "--vote-prompt", "prompts/vote_v1.yaml", "--graph", str(tmp / "graph.json"),
                   "--subgraphs", str(tmp / "subgraphs.jsonl"),
                   "--reports-dir", str(tmp / "reports/extract")]
        say(f"cache: extracting {n_seeds} seeds on the embedded model first (not timed)")
        run_checked(extract, cwd=ROOT, env=env)
        generate = [*common, "stages/generate.py", "--params", str(tmp / "params.yaml"),
                    "--subgraphs", str(tmp / "subgraphs.jsonl"),
                    "--generator-prompt", "prompts/generator_v2.yaml",
                    "--discriminator-prompt", "prompts/discriminator_v1.yaml",
                    "--orchestrator-prompt", "prompts/orchestrator_v1.yaml",
                    "--accepted", str(tmp / "accepted.jsonl"),
                    "--rejected", str(tmp / "rejected.jsonl"),
                    "--review-dir", str(tmp / "review"),
                    "--reports-dir", str(tmp / "reports/generate")]
        walls, works, calls, outputs = [], [], [], []
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            run_checked(generate, cwd=ROOT, env=env)
            walls.append(time.perf_counter() - t0)
            rep = tmp / "reports/generate"
            ledger = json.loads((rep / "llm_ledger.json").read_text())
            works.append(json.loads((rep / "metrics.json").read_text())["wall_time_s"])
            calls.append(ledger["api_calls"])
            outputs.append({p.name: p.read_bytes() for p in tmp.glob("*.jsonl")})
            say(f"cache {label}: process {walls[-1]:.1f}s, stage work {works[-1]:.2f}s, "
                f"{ledger['api_calls']} LLM calls, {ledger['cache_hits']} cache hits")
    same = outputs[0] == outputs[1]
    wall_x, work_x = walls[0] / walls[1], works[0] / max(works[1], 1e-3)
    say(f"cache: warm vs cold generate: {calls[1]} LLM calls (target 0); process wall "
        f"{wall_x:.1f}x faster, stage work (LLM loop + dedup + metrics, after imports and "
        f"model loads) {work_x:.1f}x faster (target >= 50x); outputs identical: {same}  "
        f"({load()})")
    return {"cache_warm_llm_calls": calls[1], "cache_cold_llm_calls": calls[0],
            "cache_speedup_process_x": round(wall_x, 1), "cache_speedup_work_x": round(work_x, 1),
            "cache_outputs_identical": same}


def bench_e2e() -> dict:
    """Default `dvc repro`, cold (a fresh copy: no outputs, empty LLM and model caches, as
    after a clone) then again as a no-op."""
    with tempfile.TemporaryDirectory() as tmp:
        from repo_copy import copy_repo, git_env, git_init  # tests/: the tests' copy helper

        work = Path(tmp) / "repo"
        copy_repo(work)
        (work / ".venv").symlink_to(ROOT / ".venv")
        env = {**git_env(Path(tmp) / "llmcache"), "FR_MODEL_CACHE_DIR": str(Path(tmp) / "models")}
        git_init(work, env)
        subprocess.run([sys.executable, "-m", "falsereject.core.compose"], cwd=work, env=env,
                       check=True)
        out = {}
        for label, target in (("cold", 900.0), ("noop", 15.0)):
            t0 = time.perf_counter()
            proc = subprocess.run(["dvc", "repro"], cwd=work, env=env, capture_output=True,
                                  text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                say(f"e2e {label}: dvc repro failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
                raise SystemExit(1)
            out[f"e2e_{label}_s"] = round(wall, 1)
            say(f"e2e {label} dvc repro: {wall:.1f}s = {wall / target:.2f} of the "
                f"{target:.0f}s target ({load()})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=["fanout", "cache", "embedded"])
    ap.add_argument("--e2e", action="store_true", help="also time the whole default dvc repro")
    ap.add_argument("--latency-s", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=2,
                    help="client processes for the pooled fan-out runs (1: single process only)")
    ap.add_argument("--rounds", type=int, default=8,
                    help="fan-out calls per run = concurrency x rounds (8: ramp-up and tail "
                         "weigh in, as in one stage's batch; 32: closer to steady state)")
    ap.add_argument("--cache-seeds", type=int, default=4, help="seeds for the cache benchmark")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    chosen = args.only or ["fanout", "cache", "embedded"]
    from falsereject.core import settings

    results: dict = {"machine": load(), "rounds": args.rounds,
                     "start_interval_ms": settings.get().llm_start_interval_ms}
    if "fanout" in chosen:
        # one client process, then a pool of --workers processes (llm/pool.py), at 200 ms and
        # at 1 s latency (where the client's CPU per call matters less: this separates the cost
        # of LiteLLM's per-call work from any limit of the concurrency design)
        for workers in sorted({1, max(1, args.workers)}):
            results |= bench_fanout(args.latency_s, workers=workers, rounds=args.rounds)
            slow = bench_fanout(1.0, levels=(64, 256), workers=workers, rounds=args.rounds)
            results |= {f"{k}_latency_1s": v for k, v in slow.items()}
        say("fanout targets: efficiency >= 0.9 at c=64/200 ms and c=256/1 s -> " + ", ".join(
            f"{k}={v}" for k, v in sorted(results.items())
            if k.startswith("fanout_efficiency_c64") or k.startswith("fanout_efficiency_c256")))
    if "cache" in chosen:
        results |= bench_cache(args.cache_seeds)
    if "embedded" in chosen:
        results |= bench_embedded()
    if args.e2e:
        results |= bench_e2e()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
