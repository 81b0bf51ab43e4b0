"""Profile loading and validation against the notebooks' parameters cells."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from unixlib import config


def _notebook(path: Path, params_source: str) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params_source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell, nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, str(path))


@pytest.fixture()
def series(tmp_path):
    nbs, profiles = tmp_path / "nbs", tmp_path / "profiles"
    nbs.mkdir()
    profiles.mkdir()
    common = 'run_dir = "papermill_runs/smoke"\nfigures_dir = "figures/smoke"\nseed = 0\n'
    _notebook(nbs / "01_a.ipynb", common + 'steps = 10\nlr: float = 1e-4\nname = "x"\n')
    _notebook(nbs / "02_b.ipynb", common + "steps = 20\nflags = [1, 2]\n")
    return nbs, profiles


def _load(series, text: str, name: str = "p", overrides=None) -> config.Profile:
    nbs, profiles = series
    (profiles / f"{name}.yaml").write_text(text)
    return config.load(name, overrides, profile_dir=profiles, notebook_dir=nbs)


def test_parameters_cell_is_parsed_with_types(series):
    params = config.notebook_parameters(series[0] / "01_a.ipynb")
    assert params["steps"].default == 10 and params["steps"].type is int
    assert params["lr"].type is float and params["name"].type is str


def test_defaults_run_dirs_and_per_notebook_values(series):
    p = _load(series, "parameters: {seed: 3}\nnotebooks:\n  02_b: {steps: 7}\n")
    assert p.params["01_a"]["seed"] == 3 and p.params["02_b"]["seed"] == 3
    assert p.params["01_a"]["steps"] == 10 and p.params["02_b"]["steps"] == 7
    assert p.params["01_a"]["run_dir"] == "papermill_runs/p"
    assert p.overridden["02_b"] == {
        "run_dir": "papermill_runs/p",
        "figures_dir": "figures/p",
        "seed": 3,
        "steps": 7,
    }


def test_int_is_accepted_for_float_and_converted(series):
    p = _load(series, "notebooks:\n  01_a: {lr: 1}\n")
    assert p.params["01_a"]["lr"] == 1.0 and isinstance(p.params["01_a"]["lr"], float)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parameters: {stepz: 1}\n", "'stepz' is declared by no notebook"),
        ("notebooks:\n  01_a: {flags: [1]}\n", "01_a has no parameter 'flags'"),
        ("notebooks:\n  09_z: {}\n", "no notebook '09_z'"),
        ("parameters: {steps: ten}\n", "'steps' must be int, got str"),
        ("parameters: {seed: true}\n", "'seed' must be int, got bool"),
        ("notebooks:\n  01_a: {lr: '1e-4'}\n", "'lr' must be float, got str"),
        ("bogus: 1\n", "unknown top-level keys"),
    ],
)
def test_bad_profiles_name_the_key(series, text, message):
    with pytest.raises(config.ProfileError, match=message.replace("[", r"\[")):
        _load(series, text)


def test_missing_profile_lists_known_ones(series):
    _load(series, "{}\n", name="known")
    with pytest.raises(config.ProfileError, match="known profiles: known"):
        config.load("nope", profile_dir=series[1], notebook_dir=series[0])


def test_overrides_win_and_are_validated(series):
    p = _load(series, "parameters: {seed: 3}\n", overrides=["seed=5", "02_b.steps=2"])
    assert p.params["01_a"]["seed"] == 5 and p.params["02_b"]["steps"] == 2
    with pytest.raises(config.ProfileError, match="'steps' must be int"):
        _load(series, "{}\n", overrides=["steps=abc"])


def test_non_literal_parameter_is_rejected(tmp_path):
    _notebook(tmp_path / "01_x.ipynb", "import os\n")
    with pytest.raises(config.ProfileError, match="not 'name = literal'"):
        config.notebook_parameters(tmp_path / "01_x.ipynb")


def test_saved_profile_round_trips(series, tmp_path):
    p = _load(series, "{}\n")
    p.save(tmp_path / "out" / "resolved.json")
    body = json.loads((tmp_path / "out" / "resolved.json").read_text())
    assert body["notebooks"] == p.params


def test_project_path_anchors_relative_paths_at_the_repo_root(tmp_path):
    assert config.project_path("figures/smoke") == config.REPO_ROOT / "figures/smoke"
    assert config.project_path(tmp_path) == tmp_path
