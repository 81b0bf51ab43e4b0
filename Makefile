# The README's two commands: `make reproduce` and `make test`. Both create .venv when missing.
PROFILE ?= smoke
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# torch first and pinned, so that no later requirement resolves to a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: help venv reproduce test test-fast nbval lint format lab bench snapshot clean-runs

help:
	@echo "make reproduce [PROFILE=smoke]  run the notebook series (papermill) -> papermill_runs/, figures/"
	@echo "make test                       unit tests + nbval on the smoke notebooks"
	@echo "make test-fast                  unit tests only (no notebooks, no slow tests)"
	@echo "make snapshot [PROFILE=smoke]   copy the headline figures/tables to docs/results/ (README)"
	@echo "make lint | format | lab | bench"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else f'torch {v} was installed; expected 2.13.0')"
	touch $(STAMP)

venv: $(STAMP)

reproduce: $(STAMP)
	$(PY) -m unixlib reproduce --profile $(PROFILE) $(ARGS)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q --nbval-lax -p no:cacheprovider notebooks

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow" tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) -m unixlib.bench

snapshot: $(STAMP)
	$(PY) -m unixlib.snapshot $(PROFILE)

clean-runs:
	rm -rf papermill_runs/$(PROFILE) figures/$(PROFILE)
