#!/usr/bin/env bash
# Run the `sft@<arm>` stages exactly as dvc.yaml declares them (every arm of sft.arms, or those
# in FR_SFT_ARMS), on whatever this machine has (one or several CUDA GPUs, or the CPU), and
# print each arm's throughput. Device, precision (bf16 on CUDA) and the micro-batch come from
# the hardware inside the stage; nothing here changes the experiment.
#
#   scripts/gpu_sft.sh                                  # params.yaml as composed
#   scripts/gpu_sft.sh experiment=gpu model=qwen        # Hydra overrides, like `dvc exp run -S`
#   FR_SFT_ARMS=general_falsereject scripts/gpu_sft.sh  # one arm
#   FR_SFT_OUT_ROOT=/tmp/gpu scripts/gpu_sft.sh ...     # write models/ and reports/ under a root
#   FR_SFT_DRY_RUN=1 scripts/gpu_sft.sh                 # print the command lines only
#
# Needs: data/sft_data/recipe.jsonl (stage sft_data) and data/export/train.jsonl, test.jsonl
# (stage structure); carry them to a fresh machine. A Python with the project installed
# (PYTHON, default .venv/bin/python, else python3). Several GPUs run under `accelerate launch`
# (one process per GPU). The whole experiment at GPU sizes: scripts/gpu_experiment.sh.
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

# Each arm's command line from dvc.yaml's foreach (paths live only there), with the params
# file and an optional output root substituted: one line per arm, arguments tab-separated.
cat > "$work/argv.py" <<'EOF'
import shlex, sys
import yaml
params, root, only = sys.argv[1], sys.argv[2], sys.argv[3].split()
stage = yaml.safe_load(open("dvc.yaml"))["stages"]["sft"]
arms = list(yaml.safe_load(open(params))["sft"]["arms"])
unknown = set(only) - set(arms)
if unknown:
    sys.exit(f"error: FR_SFT_ARMS names {sorted(unknown)}; sft.arms has {arms}")
for arm in only or arms:
    cmd = shlex.split(stage["do"]["cmd"].replace("${key}", arm))
    assert cmd[0] == "python", cmd
    args = cmd[1:] + ["--params", params]
    if root:
        for flag in ("--out", "--reports"):
            i = args.index(flag)
            args[i + 1] = f"{root.rstrip('/')}/{args[i + 1]}"
    print("\t".join(args))
EOF
mapfile -t runs < <("$PY" "$work/argv.py" "$params" "${FR_SFT_OUT_ROOT:-}" "${FR_SFT_ARMS:-}")
[[ ${#runs[@]} -gt 0 ]] || { echo "error: no arm to train" >&2; exit 2; }

cat > "$work/summary.py" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
info = json.load(open(sys.argv[2]))
hw = info["hardware"]
print(f"sft@{info['data']['arm']} on {hw['device']} x{hw['processes']} ({hw['precision']}): "
      f"{m['steps']} steps, {m['s_per_step']} s/step, {m['tokens_per_s']} tokens/s, "
      f"{m['train_tokens']} train tokens, loss {m['first_loss']} -> {m['final_loss']}, "
      f"train {m['runtime_s']} s, wall {sys.argv[3]} s")
EOF

if [[ "$gpus" -gt 1 ]]; then
  launch=("$PY" -m accelerate.commands.launch --multi_gpu --num_processes "$gpus")
else
  launch=("$PY")
fi
for line in "${runs[@]}"; do
  IFS=$'\t' read -r -a argv <<< "$line"
  echo "running: ${launch[*]} ${argv[*]}"
  [[ -n "${FR_SFT_DRY_RUN:-}" ]] && continue
  start=$(date +%s)
  "${launch[@]}" "${argv[@]}"
  end=$(date +%s)
  reports=$(printf '%s\n' "${argv[@]}" | grep -A1 -x -- '--reports' | tail -1)
  models=$(printf '%s\n' "${argv[@]}" | grep -A1 -x -- '--out' | tail -1)
  "$PY" "$work/summary.py" "$reports/metrics.json" "$models/sft_info.json" "$((end - start))"
done
