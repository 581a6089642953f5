"""Stage `config`: validates the whole composed `params.yaml` (and every `FR_*` setting).

Every other stage depends on its output, so DVC runs this check before any of them whenever any
param changed, even one the targeted stage does not read: `dvc exp run -S run.seed=abc seeds`
fails here instead of recording an experiment with an invalid config. The output's content
never depends on the params, so a valid change reruns only the stages that read it.
Params: all of `params.yaml`.

    python stages/config.py --out reports/config/valid.json
"""

from __future__ import annotations

from falsereject.core import stage
from falsereject.core.io import write_json


def main() -> None:
    ap = stage.parser(__doc__)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    stage.params(args.params)  # raises ConfigError naming every invalid key
    write_json(args.out, {"params_valid": True})
    print(f"config: {args.params} is valid")


if __name__ == "__main__":
    stage.entrypoint(main)
