# The README's two commands: `make reproduce` and `make test`. Both create .venv when missing.
PROFILE ?= smoke
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# torch first and pinned, so that no later requirement resolves to a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: help venv reproduce test test-fast lint format lab bench snapshot clean-runs

help:  ## list the targets and their variables (this text)
	@echo "usage: make TARGET [PROFILE=smoke] [ARGS='...']"
	@echo ""
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo ""
	@echo "variables:"
	@echo "  PROFILE=NAME  papermill_runs/profiles/NAME.yaml: smoke (CPU, minutes), small, paper"
	@echo "  ARGS='...'    extra flags for reproduce, test-fast and bench, e.g."
	@echo "                make reproduce ARGS='--only 01,02 --set seed=1'"
	@echo "                make test-fast ARGS='-k checkpoint'   make bench ARGS='--quick'"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else f'torch {v} was installed; expected 2.13.0')"
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the pinned packages

reproduce: $(STAMP)  ## run the notebook series -> papermill_runs/PROFILE, figures/PROFILE
	$(PY) -m unixlib reproduce --profile $(PROFILE) $(ARGS)

test: $(STAMP)  ## unit tests + the smoke notebooks under nbval
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q --nbval-lax -p no:cacheprovider notebooks

test-fast: $(STAMP)  ## unit tests only (no notebooks, no slow tests)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow" tests $(ARGS)

lint: $(STAMP)  ## ruff check + format check (notebooks included)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)  ## ruff format + autofix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

lab: $(STAMP)  ## JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)  ## benchmarks (python -m unixlib.bench), ratios measured in one run
	$(PY) -m unixlib.bench $(ARGS)

snapshot: $(STAMP)  ## copy the headline figures and tables of figures/PROFILE to docs/results/PROFILE (README)
	$(PY) -m unixlib.snapshot $(PROFILE)

clean-runs:  ## delete papermill_runs/PROFILE and figures/PROFILE
	rm -rf papermill_runs/$(PROFILE) figures/$(PROFILE)
