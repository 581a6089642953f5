"""Stage `probe`: one chat through the LLM client to each configured LLM.

Exercises the real LLM path (LiteLLM -> provider) from the first stage on, and fails early
with a clear message when a role's model or credentials are missing.

    python stages/probe.py --out data/probe/probe.json --ledger-dir reports/probe
"""

from __future__ import annotations

from falsereject.core import stage
from falsereject.core.io import write_json
from falsereject.llm import LLMCallError, LLMClient, LLMOutageError, require_credentials, run


def probe_models(p) -> list:
    """Distinct LLMs of the `llm` config, in role order."""
    seen, out = set(), []
    for role in p.llm.role_models():
        if role.model not in seen:
            seen.add(role.model)
            out.append(role)
    return out


async def probe(client: LLMClient, roles: list, prompt: str, max_tokens: int) -> list[dict]:
    """One answer per model; a model that cannot answer (dead endpoint, wrong key) stops the
    stage with one `error:` line."""
    msgs = [{"role": "user", "content": prompt}]
    results = []
    for role in roles:
        try:
            res = await client.achat(role, msgs, max_tokens=max_tokens, temperature=0.0, seed=0)
        except LLMCallError as err:
            raise LLMOutageError(f"probe of {err}") from None
        results.append({"model": role.model, "prompt": prompt, "response": res.text,
                        "finish_reason": res.finish_reason})
    return results


def main() -> None:
    ap = stage.parser(__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ledger-dir", required=True)
    args = ap.parse_args()
    p = stage.params(args.params)
    roles = probe_models(p)
    require_credentials(roles)
    client = LLMClient("probe")
    results = run(probe(client, roles, p.probe.prompt, p.probe.max_tokens))
    client.write_ledger(args.ledger_dir)
    write_json(args.out, {"probes": results})
    for r in results:
        print(f"probe {r['model']}: {r['response']!r}")


if __name__ == "__main__":
    stage.entrypoint(main)
