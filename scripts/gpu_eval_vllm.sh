#!/usr/bin/env bash
# The `eval` stages of the default experiment with the student (base + every LoRA arm) served by
# vLLM on this machine's GPU, and the student's tokens/s through vLLM against the in-process
# engine on the same prompts. Params do not change: the backend is an environment setting
# (FR_STUDENT_BACKEND=vllm, FR_STUDENT_VLLM_BASE), so tracked outputs stay as `dvc repro` made
# them; the vLLM run writes under $OUT_ROOT.
#
#   scripts/gpu_eval_vllm.sh                   # needs a CUDA GPU and PyPI access (installs vllm)
#   OUT_ROOT=/tmp/x N_PROMPTS=128 scripts/gpu_eval_vllm.sh
#
# Steps: 1. vllm (pinned) into its own venv (.venv-vllm: it brings its own CUDA torch, which
# must not replace the project's); 2. the eval stages' inputs via `dvc repro` (the in-process
# engine; a no-op when they are current); 3. `vllm serve` the base student with every adapter
# under models/sft as a LoRA module, under the names register_student asks for; 4. every
# eval@<benchmark> stage's command from dvc.yaml with the vLLM backend and an empty LLM cache;
# 5. scripts/student_backends.py: tokens/s, vLLM vs in-process, same prompts and sampling.
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_VERSION=0.33.0
PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
VENV=${VLLM_VENV:-.venv-vllm}
PORT=${VLLM_PORT:-8011}
OUT_ROOT=${OUT_ROOT:-/tmp/gpu_eval_vllm}
N_PROMPTS=${N_PROMPTS:-64}
export LITELLM_LOCAL_MODEL_COST_MAP=True TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT_ROOT"

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || {
  echo "error: no CUDA GPU here (nvidia-smi failed); vLLM needs one" >&2; exit 2; }

# 1. vllm, pinned, in its own venv
if ! "$VENV/bin/python" -c "import vllm, sys; sys.exit(vllm.__version__ != '$VLLM_VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "vllm==$VLLM_VERSION"
fi

# 2. the inputs of the eval stages (models/sft, the test split, calibration), as dvc.yaml makes them
mapfile -t keys < <("$PY" -c "import yaml; print('\n'.join(yaml.safe_load(open('params.yaml'))['eval']['benchmarks']))")
stages=(); for k in "${keys[@]}"; do stages+=("eval@$k"); done
echo "making the eval inputs (in-process engine): dvc repro ${stages[*]}"
start=$(date +%s)
PATH="$(dirname "$PY"):$PATH" "$PY" -m dvc repro "${stages[@]}"
echo "in-process eval (or no-op if current): $(( $(date +%s) - start )) s"

# 3. vLLM with the base student and every adapter, under register_student's names
args=$("$PY" -m falsereject.llm.vllm_student --sft-root models/sft)
echo "vllm serve $args"
eval "set -- $args"
"$VENV/bin/vllm" serve "$@" --port "$PORT" --gpu-memory-utilization 0.6 \
  >"$OUT_ROOT/vllm.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
base="http://127.0.0.1:$PORT/v1"
for _ in $(seq 600); do
  curl -sf "$base/models" >/dev/null && break
  kill -0 $server 2>/dev/null || { echo "vllm exited:"; tail -50 "$OUT_ROOT/vllm.log"; exit 1; }
  sleep 1
done
curl -sf "$base/models" | "$PY" -c "import json,sys; print('served:', [m['id'] for m in json.load(sys.stdin)['data']])"

# 4. every eval stage's own command (from dvc.yaml) on the vLLM backend, outputs under OUT_ROOT
export FR_STUDENT_BACKEND=vllm FR_STUDENT_VLLM_BASE="$base"
export FR_LLM_CACHE_DIR="$OUT_ROOT/llm_cache" FR_LLM_CONCURRENCY=${FR_LLM_CONCURRENCY:-64}
for k in "${keys[@]}"; do
  mapfile -t argv < <("$PY" - "$k" "$OUT_ROOT" <<'PYEOF'
import shlex, sys
import yaml
key, root = sys.argv[1], sys.argv[2]
cmd = yaml.safe_load(open("dvc.yaml"))["stages"]["eval"]["do"]["cmd"].replace("${key}", key)
args = shlex.split(cmd)[1:]
for flag in ("--out-dir", "--reports-dir"):
    i = args.index(flag)
    args[i + 1] = f"{root}/{args[i + 1]}"
print("\n".join(args))
PYEOF
)
  start=$(date +%s)
  "$PY" "${argv[@]}"
  echo "eval@$k through vLLM: $(( $(date +%s) - start )) s"
  "$PY" - "reports/eval/$k/metrics.json" "$OUT_ROOT/reports/eval/$k/metrics.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
rates = sorted(k for k in a if k.endswith("_rate") and k in b)[:6]
for k in rates:
    print(f"  {k}: in-process {a[k]:.3f}  vLLM {b[k]:.3f}")
PYEOF
done

# 5. tokens/s on the same prompts, no cache
"$PY" scripts/student_backends.py --base-url "$base" --n "$N_PROMPTS" \
  --out "$OUT_ROOT/student_backends.json"
echo "numbers: $OUT_ROOT/student_backends.json; vLLM log: $OUT_ROOT/vllm.log"
