#!/usr/bin/env bash
# Run stage `sft` exactly as dvc.yaml declares it, on whatever this machine has (one or several
# CUDA GPUs, or the CPU), and print its throughput. Device, precision (bf16 on CUDA) and the
# micro-batch come from the hardware inside the stage; nothing here changes the experiment.
#
#   scripts/gpu_sft.sh                                  # params.yaml as composed
#   scripts/gpu_sft.sh sft.max_steps=200 model=qwen     # Hydra overrides, like `dvc exp run -S`
#   FR_SFT_OUT_ROOT=/tmp/gpu scripts/gpu_sft.sh ...     # write models/ and reports/ under a root
#
# Needs: data/export/train.jsonl and test.jsonl (outputs of stage `structure`; carry them to a
# fresh machine), a Python with the project installed (PYTHON, default .venv/bin/python, else
# python3). Several GPUs run under `accelerate launch` (one process per GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
export HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
export LITELLM_LOCAL_MODEL_COST_MAP=True

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
params=params.yaml
if [[ $# -gt 0 ]]; then
  params="$work/params.yaml"
  "$PY" -m falsereject.core.compose --out "$params" "$@"
fi

gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
fi

# The stage's command line from dvc.yaml (paths live only there), with the launcher, the
# params file and an optional output root substituted.
mapfile -t argv < <("$PY" - "$params" "${FR_SFT_OUT_ROOT:-}" <<'EOF'
import shlex, sys
import yaml
params, root = sys.argv[1], sys.argv[2]
cmd = shlex.split(yaml.safe_load(open("dvc.yaml"))["stages"]["sft"]["cmd"])
assert cmd[0] == "python", cmd
args = cmd[1:] + ["--params", params]
if root:
    for flag in ("--out", "--reports"):
        i = args.index(flag)
        args[i + 1] = f"{root.rstrip('/')}/{args[i + 1]}"
print("\n".join(args))
EOF
)

if [[ "$gpus" -gt 1 ]]; then
  launch=("$PY" -m accelerate.commands.launch --multi_gpu --num_processes "$gpus")
else
  launch=("$PY")
fi
echo "running: ${launch[*]} ${argv[*]}"
start=$(date +%s)
"${launch[@]}" "${argv[@]}"
end=$(date +%s)

reports=$(printf '%s\n' "${argv[@]}" | grep -A1 -x -- '--reports' | tail -1)
models=$(printf '%s\n' "${argv[@]}" | grep -A1 -x -- '--out' | tail -1)
"$PY" - "$reports/metrics.json" "$models/sft_info.json" "$((end - start))" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
info = json.load(open(sys.argv[2]))
hw = info["hardware"]
print(f"sft on {hw['device']} x{hw['processes']} ({hw['precision']}): {m['steps']} steps, "
      f"{m['s_per_step']} s/step, {m['tokens_per_s']} tokens/s, "
      f"{m['train_tokens']} train tokens, loss {m['first_loss']} -> {m['final_loss']}, "
      f"train {m['runtime_s']} s, wall {sys.argv[3]} s")
EOF
