"""Repository contracts: pins agree, notebooks are stripped and parameterised, profiles resolve."""

from __future__ import annotations

import json
import tomllib

import pytest
import yaml

from tests.conftest import REPO_ROOT
from unixlib import config


def _pyproject_pins() -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["dev"]


def test_environment_yml_has_the_same_pins_as_pyproject():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = sorted(p for p in pip_section if not p.startswith("-e"))
    assert conda_pins == sorted(_pyproject_pins())


def test_every_dependency_is_pinned_exactly_and_torchvision_is_absent():
    for pin in _pyproject_pins():
        assert "==" in pin, f"{pin} is not pinned exactly"
        assert not pin.startswith("torchvision"), "torchvision breaks beside torch 2.13 here"
    assert "torch==2.13.0" in _pyproject_pins()


def test_installed_torch_is_the_pinned_one():
    import torch

    assert torch.__version__.startswith("2.13.0")


@pytest.mark.parametrize("nb_path", config.notebooks(), ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_and_has_a_parameters_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{nb_path.name} has outputs"
            assert cell.get("execution_count") is None, f"{nb_path.name} has execution counts"
    params = config.notebook_parameters(nb_path)
    assert {config.RUN_DIR_KEY, config.FIGURES_DIR_KEY, "seed"} <= set(params)
    assert nb["cells"][0]["cell_type"] == "markdown", "a notebook opens with its title and purpose"


def test_notebook_defaults_are_the_smoke_profile():
    smoke = config.load("smoke")
    for stem, values in smoke.params.items():
        defaults = {
            k: p.default
            for k, p in config.notebook_parameters(config.NOTEBOOK_DIR / f"{stem}.ipynb").items()
        }
        assert values == defaults, f"{stem}: smoke profile differs from the notebook defaults"


@pytest.mark.parametrize("path", sorted(config.PROFILE_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_profile_validates(path):
    profile = config.load(path.stem)
    # No profile sets its own folders: each writes under its name, so profiles never mix outputs.
    for values in profile.params.values():
        assert values[config.RUN_DIR_KEY] == f"papermill_runs/{path.stem}"
        assert values[config.FIGURES_DIR_KEY] == f"figures/{path.stem}"


@pytest.mark.parametrize("nb_path", config.notebooks(), ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_we_read(nb_path, caplog):
    """papermill's own parser must see the same parameters (it silently drops lines it cannot
    parse, e.g. some comments, and then warns 'Passed unknown parameter')."""
    import papermill as pm

    with caplog.at_level("WARNING"):
        theirs = pm.inspect_notebook(str(nb_path))
    assert set(theirs) == set(config.notebook_parameters(nb_path))
    assert "Unable to parse" not in caplog.text
