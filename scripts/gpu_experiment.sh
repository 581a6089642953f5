#!/usr/bin/env bash
# The over-refusal experiment (sft arms, evaluation of base + arms, kl, capability, report) at
# GPU sizes (conf/experiment/gpu.yaml) as a DVC experiment, then its headline. Device and
# precision come from the hardware inside the stages; the experiment is the same as on CPU,
# only larger.
#
#   scripts/gpu_experiment.sh                        # dvc exp run -S experiment=gpu
#   scripts/gpu_experiment.sh -S model=qwen          # more `dvc exp run` arguments
#   FR_GPU_DRY_RUN=1 scripts/gpu_experiment.sh       # check config and the stage list only
#
# Needs the project installed (.venv, `make setup`) and a git repository (dvc experiments);
# the default llm group serves every role from the embedded model, so no network is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
export HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
export LITELLM_LOCAL_MODEL_COST_MAP=True
# GPU batch sizes for the local engine (generation) and the trainer (micro batch)
export FR_LOCAL_BATCH_SIZE=${FR_LOCAL_BATCH_SIZE:-128}

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
else
  echo "note: no nvidia-smi; running on the CPU (slow at these sizes)" >&2
fi
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m falsereject.core.compose --out "$work/params.yaml" experiment=gpu
python - "$work/params.yaml" <<'EOF'
import sys
import yaml
from falsereject.core.config import validate
p = validate(yaml.safe_load(open(sys.argv[1])), sys.argv[1])
print(f"experiment={p.experiment.name}: arms {list(p.sft.arms)}, epochs {p.sft.epochs}, "
      f"general instructions {p.sft.general.n_instructions}, benign_edgy "
      f"{p.eval.benchmarks['benign_edgy'].max_samples or 'all'} prompts")
EOF
if [[ -n "${FR_GPU_DRY_RUN:-}" ]]; then
  dvc stage list | grep -E '^(sft|eval|kl|capability|report)' || true
  exit 0
fi
start=$(date +%s)
dvc exp run -S experiment=gpu "$@"
echo "experiment wall: $(( $(date +%s) - start )) s"
sed -n '/^## Headline/,/^!\[/p' reports/eval/summary.md
cat reports/capability/summary.md
