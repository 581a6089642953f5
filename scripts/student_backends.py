"""Tokens/s of the student answered by a vLLM server against the in-process engine, on the same
prompts and sampling (no LLM cache: every answer is generated). Run by scripts/gpu_eval_vllm.sh;
works against any OpenAI-compatible server that serves the student's names (a test server too).

    python scripts/student_backends.py --base-url http://127.0.0.1:8011/v1 --n 64

Prompts: the first --n samples of every benchmark in params.yaml (eval.benchmarks), answered
by the base student and by every adapter under --sft-root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(ROOT / "src"))


def prompts(p, n: int) -> list[str]:
    from falsereject.evaluation.benchmarks import load_benchmark

    out: list[str] = []
    for name, cfg in p.eval.benchmarks.items():
        if cfg.kind == "own_test":
            continue  # the own test split needs the generate stage's output
        try:
            out += [s.prompt for s in load_benchmark(name, cfg, max_samples=n, seed=p.run.seed)]
        except Exception as err:  # noqa: BLE001 - an unavailable benchmark is skipped, said
            print(f"skipping benchmark {name}: {err}", flush=True)
    return out[:n]


def timed(ids: list[str], texts: list[str], p, concurrency: int) -> tuple[float, int, int]:
    from falsereject.evaluation.answers import messages, student_role
    from falsereject.llm import ChatResult, LLMClient, run

    client = LLMClient("student-backends", use_cache=False, concurrency=concurrency)

    async def everything():
        import asyncio

        jobs = [client.achat(student_role(mid, p.eval.generation), messages(t, None), seed=0)
                for mid in ids for t in texts]
        return await asyncio.gather(*jobs, return_exceptions=True)

    # warm-up outside the timing: LiteLLM's import, the engine's model load, the connections
    run(client.achat(student_role(ids[0], p.eval.generation), messages("Hello", None), seed=1))
    start = time.perf_counter()
    results = run(everything())
    wall = time.perf_counter() - start
    ok = [r for r in results if isinstance(r, ChatResult)]
    return wall, sum(r.completion_tokens for r in ok), len(results) - len(ok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--sft-root", default=str(ROOT / "models/sft"))
    ap.add_argument("--n", type=int, default=64, help="prompts per model")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--skip-local", action="store_true", help="only the vLLM side")
    ap.add_argument("--out", help="write the numbers as JSON here")
    args = ap.parse_args()

    from falsereject.core.config import load_params
    from falsereject.llm.local.student import register_student
    from falsereject.llm.vllm_student import adapter_dirs

    p = load_params(args.params)
    texts = prompts(p, args.n)
    arms = adapter_dirs(args.sft_root) if Path(args.sft_root).exists() else []
    results = {}
    for backend in ("vllm", "local"):
        if backend == "local" and args.skip_local:
            continue
        os.environ["FR_STUDENT_BACKEND"] = backend
        os.environ["FR_STUDENT_VLLM_BASE"] = args.base_url
        ids = [register_student(p.model)] + [register_student(p.model, d) for d in arms]
        wall, tokens, failed = timed(ids, texts, p, args.concurrency)
        results[backend] = {"models": ids, "answers": len(ids) * len(texts), "failed": failed,
                            "completion_tokens": tokens, "wall_s": round(wall, 2),
                            "tokens_per_s": round(tokens / wall, 1)}
        print(f"{backend:5}: {len(ids)} models x {len(texts)} prompts, {tokens} tokens in "
              f"{wall:.1f}s = {tokens / wall:.1f} tokens/s ({failed} failed)", flush=True)
    if "local" in results and results["local"]["tokens_per_s"]:
        ratio = results["vllm"]["tokens_per_s"] / results["local"]["tokens_per_s"]
        results["vllm_over_local_x"] = round(ratio, 1)
        print(f"vLLM / in-process engine: {ratio:.1f}x tokens/s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
