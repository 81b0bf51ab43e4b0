"""The notebook series executes without error (the smoke profile), into its own run directory.

Each notebook runs through the series runner (papermill, as ``make reproduce``) with
``run_dir=papermill_runs/test`` and ``figures_dir=figures/test``, so that ``make test`` never
overwrites what ``make reproduce`` wrote to ``papermill_runs/smoke`` and ``figures/smoke``.
One test per notebook, in series order (each reads what the previous ones wrote); a run of one
notebook merges into ``papermill_runs/test/manifest.json``.
"""

from __future__ import annotations

import json

import pytest

from unixlib import config, runs

PROFILE = "smoke"
RUN_DIR, FIGURES_DIR = "papermill_runs/test", "figures/test"
STEMS = [p.stem for p in config.notebooks()]

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_executes_into_the_test_run_directory(stem):
    overrides = [f"{config.RUN_DIR_KEY}={RUN_DIR}", f"{config.FIGURES_DIR_KEY}={FIGURES_DIR}"]
    result = runs.reproduce(PROFILE, only=[stem], overrides=overrides, progress=False)
    assert [r.status for r in result] == ["ok"]
    run_dir = config.project_path(RUN_DIR)
    assert (run_dir / f"{stem}.ipynb").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    entry = next(n for n in manifest["notebooks"] if n["notebook"] == stem)
    assert entry["status"] == "ok"
    assert manifest["parameters"][stem][config.RUN_DIR_KEY] == RUN_DIR
