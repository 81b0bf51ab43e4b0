# The README's two commands: `make reproduce` and `make test`. Both create .venv when missing.
PROFILE ?= smoke
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# torch first and pinned, so that no later requirement resolves to a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Every install goes through the exact pins (pyproject.toml itself states compatible ranges).
CONSTRAINTS := constraints.txt
STAMP := $(VENV)/.installed
LAB_PORT ?= 8888

.PHONY: help venv reproduce test test-fast lint format lab bench clean-runs

help:
	@echo "make reproduce [PROFILE=smoke]  run the notebook series (papermill) -> papermill_runs/, figures/"
	@echo "make test                       unit tests + the smoke notebooks (-> papermill_runs/test/)"
	@echo "make test-fast                  unit tests only (no notebooks, no slow tests)"
	@echo "make lint | format | lab | bench"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) "$(TORCH_SPEC)"
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	$(PY) -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else f'torch {v} was installed; expected 2.13.0')"
	touch $(STAMP)

venv: $(STAMP)

reproduce: $(STAMP)
	$(PY) -m unixlib reproduce --profile $(PROFILE) $(ARGS)

# tests/test_notebooks.py executes the series into papermill_runs/test and figures/test (never
# the smoke run's folders); tests/test_lab_browser.py leaves its screenshot in test-artifacts/.
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow" tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# JupyterLab at the repository root (notebooks/ and figures/ side by side). .jupyter/ turns off
# what reaches the network (news prompt, update check, extension search).
lab: $(STAMP)
	@echo "JupyterLab at the repository root. On a remote GPU node, run there"
	@echo "  make lab ARGS='--no-browser --ip=127.0.0.1 --port=$(LAB_PORT)'"
	@echo "then tunnel from your machine (ssh -N -L $(LAB_PORT):127.0.0.1:$(LAB_PORT) NODE) and open the"
	@echo "printed http://127.0.0.1:$(LAB_PORT)/lab?token=... URL (--ip=0.0.0.0 serves a trusted network)."
	JUPYTER_CONFIG_PATH=$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} $(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

bench: $(STAMP)
	$(PY) -m unixlib.bench

clean-runs:
	rm -rf papermill_runs/$(PROFILE) figures/$(PROFILE) papermill_runs/test figures/test
