# Quickstart:  make repro   (set up .venv, compose params.yaml, run the pipeline)
#              make test    (set up .venv, run the test suite)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# dvc runs each stage as `python stages/<name>.py`: that must be the venv's python, whatever
# the calling shell has on PATH (no activated venv is needed).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export TOKENIZERS_PARALLELISM := false

# Hydra overrides for `make compose` / `make repro`, e.g. `make repro OVERRIDES=experiment=smoke`
OVERRIDES ?=

.PHONY: setup compose repro exp test lint bench compare

setup:
	@bash scripts/setup.sh

compose: setup
	$(PY) -m falsereject.core.compose $(OVERRIDES)

repro: compose
	$(VENV)/bin/dvc repro

# any dvc command with the venv on PATH, e.g. `make exp ARGS="run -S model=qwen"`
exp: setup
	$(VENV)/bin/dvc exp $(ARGS)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src stages tests scripts

bench: setup
	$(PY) scripts/bench.py

# headline metrics of every DVC experiment side by side (reports/experiments.md and .png); runs
# no stage, e.g. after `dvc exp run --queue -S model=qwen` and `dvc exp run --run-all`
compare: setup
	$(PY) scripts/compare_experiments.py --out reports/experiments.md
