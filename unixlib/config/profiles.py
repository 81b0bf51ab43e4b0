"""Profiles: the one place where a run's parameters come from.

A *profile* (``papermill_runs/profiles/<name>.yaml``) sets notebook parameters. The schema is
the notebooks' own ``parameters`` cells: every key a profile names must be a parameter of some
notebook, with a value of that parameter's type. A notebook's defaults are the ``smoke``
profile, so a notebook also runs as-is in JupyterLab (and under the tests, into papermill_runs/test).

Profile file layout::

    description: one line shown by the runner
    parameters:            # passed to every notebook that declares the key
      seed: 0
    notebooks:             # per-notebook values (win over `parameters`)
      02_train_ar:
        steps: 3840
    requirements:          # optional; what the machine must have (checked by the dry run)
      gpus: 8
      gpu_memory_gb: 48

``run_dir`` and ``figures_dir`` default to ``papermill_runs/<name>`` and ``figures/<name>``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unixlib.config.paths import NOTEBOOK_DIR, PROFILE_DIR

# Parameters every notebook declares; the runner fills them per profile.
RUN_DIR_KEY, FIGURES_DIR_KEY = "run_dir", "figures_dir"


class ProfileError(ValueError):
    """A profile names an unknown key, gives a value of the wrong type, or is malformed."""


@dataclass(frozen=True)
class Parameter:
    """One entry of a notebook's ``parameters`` cell."""

    name: str
    default: Any
    type: type


def _literal_type(value: Any, annotation: str | None) -> type:
    named = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}
    if annotation is not None:
        base = annotation.split("[", 1)[0].strip()
        if base in named:
            return named[base]
    return type(value) if value is not None else object


def notebook_parameters(nb_path: Path) -> dict[str, Parameter]:
    """Parse the cell tagged ``parameters`` of a notebook into typed defaults.

    Only literal assignments (``name = 1`` or ``name: float = 1e-4``) are allowed there, which is
    what papermill needs anyway; anything else is an error naming the notebook and line.
    """
    nb = json.loads(Path(nb_path).read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ProfileError(
            f"{nb_path.name}: expected one cell tagged 'parameters', found {len(cells)}"
        )
    source = "".join(cells[0]["source"])
    params: dict[str, Parameter] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, ast.unparse(node.annotation)
        else:
            raise ProfileError(
                f"{nb_path.name}: parameters cell line {node.lineno} is not 'name = literal'"
            )
        if not isinstance(target, ast.Name):
            raise ProfileError(
                f"{nb_path.name}: parameters cell line {node.lineno}: assign to a plain name"
            )
        try:
            value = ast.literal_eval(node.value)
        except ValueError as err:
            raise ProfileError(f"{nb_path.name}: parameter {target.id!r} is not a literal") from err
        params[target.id] = Parameter(target.id, value, _literal_type(value, annotation))
    return params


def notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The series, in order (file names start with their two-digit position)."""
    return sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def _check_type(where: str, key: str, value: Any, expected: type) -> Any:
    if expected is object:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is str and isinstance(value, bool):
        # YAML 1.1 reads an unquoted on / off (also yes / no, true / false) as a boolean; a
        # text parameter takes it as the word on / off (``--set 01_clean_data.llm_cleaning=off``)
        return "on" if value else "off"
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        raise ProfileError(
            f"{where}: parameter {key!r} must be {expected.__name__}, "
            f"got {type(value).__name__} ({value!r})"
        )
    return value


# A profile's optional `requirements`: GPUs the run needs and the memory of each (GB).
REQUIREMENTS = ("gpus", "gpu_memory_gb")


@dataclass
class Profile:
    """A resolved profile: the exact parameters each notebook of the series receives."""

    name: str
    description: str
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # notebook stem -> values
    overridden: dict[str, dict[str, Any]] = field(default_factory=dict)  # only non-defaults
    requirements: dict[str, Any] = field(default_factory=dict)  # gpus, gpu_memory_gb

    def for_notebook(self, stem: str) -> dict[str, Any]:
        return dict(self.params[stem])

    def save(self, path: Path) -> None:
        """Write the resolved parameters (every notebook, every key) as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"profile": self.name, "description": self.description, "notebooks": self.params}
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def _parse_override(item: str) -> tuple[str | None, str, Any]:
    """``key=value`` or ``notebook.key=value`` (value parsed as YAML) -> (notebook, key, value)."""
    if "=" not in item:
        raise ProfileError(f"override {item!r} is not key=value")
    lhs, rhs = item.split("=", 1)
    nb, _, key = lhs.rpartition(".")
    return (nb or None), key, yaml.safe_load(rhs)


def load(
    name: str,
    overrides: list[str] | Mapping[str, Any] | None = None,
    profile_dir: Path = PROFILE_DIR,
    notebook_dir: Path = NOTEBOOK_DIR,
) -> Profile:
    """Read ``<profile_dir>/<name>.yaml``, validate it against the notebooks, resolve defaults.

    ``overrides``: ``["seed=1", "02_train_ar.steps=10"]`` or a mapping ``{"seed": 1}``; they win
    over the file. Unknown keys and wrong types raise :class:`ProfileError` naming the key,
    before anything runs.
    """
    path = profile_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in profile_dir.glob("*.yaml"))
        raise ProfileError(f"no profile {name!r} ({path}); known profiles: {', '.join(known)}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{path.name}: top level must be a mapping")
    unknown_sections = set(raw) - {"description", "parameters", "notebooks", "requirements"}
    if unknown_sections:
        raise ProfileError(f"{path.name}: unknown top-level keys {sorted(unknown_sections)}")
    common: dict[str, Any] = dict(raw.get("parameters") or {})
    per_nb: dict[str, dict[str, Any]] = {
        k: dict(v or {}) for k, v in (raw.get("notebooks") or {}).items()
    }

    items = (
        overrides.items()
        if isinstance(overrides, Mapping)
        else map(_parse_override, overrides or [])
    )
    for entry in items:
        nb, key, value = entry if len(entry) == 3 else (None, *entry)
        (per_nb.setdefault(nb, {}) if nb else common)[key] = value

    schemas = {p.stem: notebook_parameters(p) for p in notebooks(notebook_dir)}
    for stem in per_nb:
        if stem not in schemas:
            raise ProfileError(
                f"{path.name}: no notebook {stem!r}; notebooks are {sorted(schemas)}"
            )
    declared = {k for schema in schemas.values() for k in schema}
    for key in common:
        if key not in declared:
            raise ProfileError(f"{path.name}: parameter {key!r} is declared by no notebook")

    defaults = {RUN_DIR_KEY: f"papermill_runs/{name}", FIGURES_DIR_KEY: f"figures/{name}"}
    resolved: dict[str, dict[str, Any]] = {}
    overridden: dict[str, dict[str, Any]] = {}
    for stem, schema in schemas.items():
        values, changed = {}, {}
        for key in per_nb.get(stem, {}):
            if key not in schema:
                raise ProfileError(f"{path.name}: {stem} has no parameter {key!r}")
        for key, param in schema.items():
            if key in per_nb.get(stem, {}):
                value = per_nb[stem][key]
            elif key in common:
                value = common[key]
            elif key in defaults:
                value = defaults[key]
            else:
                value = param.default
            values[key] = _check_type(f"{path.name} [{stem}]", key, value, param.type)
            if values[key] != param.default:
                changed[key] = values[key]
        resolved[stem], overridden[stem] = values, changed
    requirements = dict(raw.get("requirements") or {})
    unknown_req = set(requirements) - set(REQUIREMENTS)
    if unknown_req:
        raise ProfileError(
            f"{path.name}: unknown requirements {sorted(unknown_req)}; known: {list(REQUIREMENTS)}"
        )
    return Profile(name, str(raw.get("description", "")), resolved, overridden, requirements)
