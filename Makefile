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

.PHONY: help venv reproduce book test test-fast lint format lab bench snapshot clean-runs

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

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) "$(TORCH_SPEC)"
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	$(PY) -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else f'torch {v} was installed; expected 2.13.0')"
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the pinned packages

reproduce: $(STAMP)  ## run the notebook series -> papermill_runs/PROFILE, figures/PROFILE
	$(PY) -m unixlib reproduce --profile $(PROFILE) $(ARGS)

# The book renders what a run wrote (executed notebooks, figures/PROFILE tables, manifest.json)
# and executes nothing; it fails with one line when papermill_runs/PROFILE has no executed notebook.
book: $(STAMP)  ## the executed series as a static site -> book/PROFILE/index.html (run reproduce first)
	$(PY) -m unixlib.experiments.book --profile $(PROFILE)

# The notebooks run under nbval from copies with their parameters injected (run_dir
# papermill_runs/test, figures_dir figures/test), so make test never overwrites what make
# reproduce wrote. Without progress bars (UNIXLIB_PROGRESS=off): nbval reads a cell's outputs
# only after it ends, and thousands of bar updates can cost it the kernel's idle message
# ("Timeout of 5 seconds exceeded waiting for output", seen once on notebook 06).
# nbval never writes outputs back; tests/nbval_executed.py (-p) keeps what each cell printed and
# drew in papermill_runs/test/*.ipynb, and tests/test_book_browser.py then renders that executed
# series as a book and walks it in Chromium; tests/test_executed_notebooks.py checks the executed
# notebooks read as documents. Both are marked `executed`: the first pytest run leaves them out
# (before the nbval step they would only skip). The browser tests leave their screenshots in test-artifacts/.
TEST_SET := --set run_dir=papermill_runs/test --set figures_dir=figures/test
test: $(STAMP)  ## unit tests (browser tests included) + the notebook series under nbval + its book
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not executed" tests
	$(PY) -m unixlib reproduce --profile smoke --prepare-only $(TEST_SET)
	HF_HUB_OFFLINE=1 UNIXLIB_PROGRESS=off $(PY) -m pytest -q --nbval-lax -p no:cacheprovider \
		-p tests.nbval_executed papermill_runs/test/*.ipynb
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider -m executed tests

test-fast: $(STAMP)  ## unit tests only (no notebooks, no slow tests)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow and not executed" tests $(ARGS)

lint: $(STAMP)  ## ruff check + format check (notebooks included) + the layer contracts
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)  ## ruff format + autofix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# JupyterLab at the repository root (notebooks/ and figures/ side by side). .jupyter/ turns off
# what reaches the network (news prompt, update check, extension search).
lab: $(STAMP)  ## JupyterLab at the repository root (ARGS='--no-browser --ip=...' on a GPU node)
	@echo "JupyterLab at the repository root. On a remote GPU node, run there"
	@echo "  make lab ARGS='--no-browser --ip=127.0.0.1 --port=$(LAB_PORT)'"
	@echo "then tunnel from your machine (ssh -N -L $(LAB_PORT):127.0.0.1:$(LAB_PORT) NODE) and open the"
	@echo "printed http://127.0.0.1:$(LAB_PORT)/lab?token=... URL (--ip=0.0.0.0 serves a trusted network)."
	JUPYTER_CONFIG_PATH=$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} $(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

bench: $(STAMP)  ## benchmarks (python -m unixlib.bench), ratios measured in one run
	$(PY) -m unixlib.bench $(ARGS)

snapshot: $(STAMP)  ## copy the headline figures and tables of figures/PROFILE to docs/results/PROFILE (README)
	$(PY) -m unixlib.experiments.snapshot $(PROFILE)

clean-runs:  ## delete papermill_runs/PROFILE, figures/PROFILE, book/PROFILE and the test run
	rm -rf papermill_runs/$(PROFILE) figures/$(PROFILE) book/$(PROFILE) papermill_runs/test figures/test
