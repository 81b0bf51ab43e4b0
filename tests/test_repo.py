"""Repository contracts: pins agree, notebooks are stripped and parameterised, profiles resolve."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT
from unixlib import config


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["dev"] + extras["tensorboard"]]


def _pins(lines: list[str]) -> dict[str, str]:
    """``name==version`` lines (comments, blanks and ``-e .`` skipped) as {name: version}."""
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, sep, version = line.partition("==")
            assert sep, f"{line!r} is not an exact pin"
            pins[name.strip().lower()] = version.strip()
    return pins


def _constraints() -> dict[str, str]:
    return _pins((REPO_ROOT / "constraints.txt").read_text().splitlines())


def test_every_requirement_has_an_exact_pin_inside_its_range():
    pins = _constraints()
    for req in _pyproject_requirements():
        assert req.name in pins, f"{req.name} has no pin in constraints.txt"
        assert req.specifier.contains(pins[req.name]), f"{req.name}=={pins[req.name]} ∉ {req}"
        if req.name != "ruff":  # ruff alone stays exact: its formatting changes between versions
            assert "==" not in str(req.specifier), f"{req}: a compatible range, not a pin"
        assert req.name != "torchvision", "torchvision breaks beside torch 2.13 here"
    assert pins["torch"] == "2.13.0"


def test_environment_yml_has_the_pins_of_constraints_txt():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    optional = {r.name for r in _pyproject_requirements()} - set(_pins(pip_section))
    assert optional == {"tensorboard"}, "environment.yml installs every requirement but extras"
    expected = {k: v for k, v in _constraints().items() if k not in optional}
    assert _pins(pip_section) == expected


def test_makefile_installs_through_the_constraints():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert '-c $(CONSTRAINTS) -e ".[dev]"' in makefile
    assert "CONSTRAINTS := constraints.txt" in makefile


def test_installed_torch_is_the_pinned_one():
    import torch

    assert torch.__version__.startswith("2.13.0")


@pytest.mark.parametrize("nb_path", config.notebooks(), ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_and_has_a_parameters_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    ids = [cell.get("id") for cell in nb["cells"]]
    assert None not in ids and len(set(ids)) == len(ids), f"{nb_path.name}: cell ids (nbformat 4.5)"
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


# ------------------------------------------------------------------------------ package layers
LAYERS = {"config", "data", "model", "train", "eval", "experiments", "viz", "cli", "bench"}


def test_every_module_sits_in_a_layer():
    """DESIGN.md section 3: the package is its layers; only the package's own __init__ and
    __main__ stand beside them (import-linter checks the arrows between them, make lint)."""
    package = REPO_ROOT / "unixlib"
    loose = sorted(p.name for p in package.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py"], loose
    folders = {p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == LAYERS


def test_the_layer_contracts_are_declared_for_every_layer():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    contracts = project["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    named = {name.strip().removeprefix("unixlib.") for row in layers for name in row.split("|")}
    assert named == LAYERS


def test_each_sampling_knob_has_one_default():
    """The sampler's settings have one home, UniXConfig (its presets may set them): no other
    module, notebook or profile gives one of them a literal value (a default or a setting)."""
    knobs = "|".join(("sample_steps", "cfg_scale", "cfg_interval", "sample_shift", "cfg_renorm"))
    literal = r"(-?\d|\(|\[|True|False)"
    pattern = re.compile(rf"[\"']?\b({knobs})\b[\"']?\s*(:\s*[\w\[\], .|]+?)?\s*[=:]\s*{literal}")
    # On purpose, not a default: an evaluation's ``sampler`` overrides (its captions say so),
    # and guidance 1 for images without a report (there it is the identity, at half the cost).
    allowed = ("sampler = {", '``{"sample_steps": 20}``', "blank, inputs.tokenizer, cfg_scale=1.0")
    found = []
    sources = [*(REPO_ROOT / "unixlib").rglob("*.py"), *(REPO_ROOT / "notebooks").glob("*.ipynb")]
    sources += list((REPO_ROOT / "papermill_runs" / "profiles").glob("*.yaml"))
    for path in sources:
        if path.relative_to(REPO_ROOT).as_posix() == "unixlib/model/config.py":
            continue
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        for line in text.splitlines():
            if pattern.search(line.split("#")[0]) and not any(a in line for a in allowed):
                found.append(f"{path.relative_to(REPO_ROOT)}: {line.strip()}")
    assert not found, "\n".join(found)


def test_every_module_imports():
    """A module moved between layers leaves no import of its old path behind (import-linter
    does not see imports of modules that no longer exist)."""
    import importlib
    import pkgutil

    import unixlib

    skip = {"unixlib.__main__", "unixlib.bench.__main__"}  # they run their command on import
    names = [m.name for m in pkgutil.walk_packages(unixlib.__path__, "unixlib.")]
    for name in sorted(set(names) - skip):
        importlib.import_module(name)
    assert len(names) > 100


def test_every_from_import_of_unixlib_resolves_lazy_ones_included():
    """``from unixlib.x import y`` inside a function runs only when the function does: a name
    moved between layers must not leave such an import behind (the package and the tests)."""
    import ast
    import importlib

    broken = []
    for folder in ("unixlib", "tests"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.ImportFrom) and node.level == 0):
                    continue
                if not (node.module or "").startswith("unixlib"):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if hasattr(module, alias.name):
                        continue
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        broken.append(f"{path.name}:{node.lineno} {node.module}.{alias.name}")
    assert not broken, broken
