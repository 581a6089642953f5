# Quickstart:  make repro   (set up .venv, compose params.yaml, run the pipeline)
#              make test    (set up .venv, run the test suite)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export TOKENIZERS_PARALLELISM := false

.PHONY: setup compose repro test lint bench

setup:
	@bash scripts/setup.sh

compose: setup
	$(PY) -m falsereject.compose

repro: compose
	$(VENV)/bin/dvc repro

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src stages tests scripts

bench: setup
	$(PY) scripts/bench.py
