"""What the book knows about a run, read from what the run left behind (never re-run).

A run is a folder of executed notebooks (``papermill_runs/<name>/``) and its figures and tables
(``figures/<name>/``). Each executed notebook carries the parameters it ran with (papermill
writes them into its metadata); ``manifest.json``, when the series runner wrote one, adds the
commit, package versions, device and wall times. ``make test``'s notebooks run under nbval
and leave no manifest: the pages then say what is not recorded.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import yaml

from unixlib import config

# How a data source is named on a page.
SOURCE_NAMES = {
    "synth": "SynthCXR (procedural, built in)",
    "mimic": "MIMIC-CXR",
    "iuxray": "IU X-ray",
    "folder": "a folder of images with a CSV",
}


@dataclass
class RunFacts:
    """A run as the book reads it.

    ``notebooks``: the executed notebooks of the series, in series order; ``params``: notebook
    stem -> the parameters it ran with; ``manifest``: ``manifest.json`` (empty when absent);
    ``splits``: rows per split of the processed data; ``n_parameters``: parameters of the last
    trained model (VAE apart), 0 when none was found.
    """

    name: str
    run_dir: Path
    figures_dir: Path
    notebooks: list[Path]
    params: dict[str, dict[str, Any]]
    manifest: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    splits: dict[str, int] = field(default_factory=dict)
    n_parameters: int = 0

    def param(self, stem: str, key: str, default: Any = None) -> Any:
        """A parameter of one notebook (``default`` when that notebook did not run)."""
        return self.params.get(stem, {}).get(key, default)


def is_executed(nb: nbformat.NotebookNode) -> bool:
    """True when some code cell of ``nb`` ran (a prepared, unexecuted copy has none)."""
    return any(c.cell_type == "code" and c.get("execution_count") for c in nb.cells)


def executed_notebooks(run_dir: Path) -> list[Path]:
    """The executed ``NN_*.ipynb`` of ``run_dir``, in series order."""
    found = sorted(run_dir.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if is_executed(nbformat.read(p, as_version=4))]


def _parameters(nb_path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The parameters a notebook ran with: papermill's record in it, else the manifest's."""
    nb = nbformat.read(nb_path, as_version=4)
    recorded = nb.metadata.get("papermill", {}).get("parameters")
    if recorded:
        return dict(recorded)
    return dict(manifest.get("parameters", {}).get(nb_path.stem, {}))


def model_parameter_count(weights: Path) -> int:
    """Number of parameters in a ``.safetensors`` file, read from its header alone."""
    with weights.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return sum(prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


def _last_model(run_dir: Path) -> Path | None:
    """The weights of the latest stage's final model (``stage3`` before ``stage2``...)."""
    for stage in ("stage3", "stage2", "stage1"):
        found = sorted((run_dir / stage / "final").glob("model*.safetensors"))
        if found:
            return found[0] if len(found) == 1 else None
    return None


def _splits(run_dir: Path) -> dict[str, int]:
    path = run_dir / "data" / "processed.parquet"
    if not path.is_file():
        return {}
    counts = pd.read_parquet(path, columns=["split"])["split"].value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _description(name: str, manifest: dict[str, Any]) -> str:
    if manifest.get("description"):
        return str(manifest["description"])
    path = config.PROFILE_DIR / f"{name}.yaml"
    if path.is_file():
        return str((yaml.safe_load(path.read_text()) or {}).get("description", ""))
    return ""


def read_run(name: str, run_dir: Path, figures_dir: Path) -> RunFacts:
    """Read a run. Raises ``FileNotFoundError`` (one line) when ``run_dir`` holds no executed
    notebook."""
    notebooks = executed_notebooks(run_dir) if run_dir.is_dir() else []
    if not notebooks:
        raise FileNotFoundError(
            f"{shown_path(run_dir)} has no executed notebooks (NN_*.ipynb with outputs): "
            f"run `make reproduce PROFILE={name}` first"
        )
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    weights = _last_model(run_dir)
    return RunFacts(
        name=name,
        run_dir=run_dir,
        figures_dir=figures_dir,
        notebooks=notebooks,
        params={p.stem: _parameters(p, manifest) for p in notebooks},
        manifest=manifest,
        description=_description(name, manifest),
        splits=_splits(run_dir),
        n_parameters=model_parameter_count(weights) if weights else 0,
    )


def shown_path(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it, else as given."""
    try:
        return str(path.resolve().relative_to(config.REPO_ROOT))
    except ValueError:
        return str(path)


def _millions(n: int) -> str:
    return f"~{n / 1e6:.1f}M" if n < 1e9 else f"~{n / 1e9:.2f}B"


def scale_line(run: RunFacts) -> str:
    """The run's scale in one line: model, data, image size, schedule, e.g. ``tiny preset
    (~7.7M parameters), SynthCXR 64 px, 2,000 train / 200 test images, stages 1/2/3: 300/210/450
    steps``."""
    parts = []
    preset = run.param("02_train_ar", "preset")
    if preset:
        size = f" ({_millions(run.n_parameters)} parameters)" if run.n_parameters else ""
        parts.append(f"{preset} preset{size}")
    source = run.param("01_clean_data", "source")
    if source:
        name = SOURCE_NAMES.get(source, source).split(" (")[0]
        parts.append(f"{name} {run.param('01_clean_data', 'image_size')} px")
    if run.splits:
        parts.append(
            f"{run.splits.get('train', 0):,} train / {run.splits.get('test', 0):,} test images"
        )
    steps = [run.param(s, "steps") for s in ("02_train_ar", "03_train_diffusion", "04_joint_stage")]
    if any(s is not None for s in steps):
        shown = "/".join("-" if s is None else str(s) for s in steps)
        parts.append(f"stages 1/2/3: {shown} steps")
    return ", ".join(parts)


def ablation_scale(run: RunFacts) -> str:
    """The ablation runs' own scale (notebook 06), e.g. ``arms of 30 generation / 40
    understanding steps, 1 seed, 100 test images``."""
    p = run.params.get("06_ablations")
    if not p:
        return ""
    seeds = p.get("seeds") or [p.get("seed")]
    return (
        f"arms of {p.get('steps_gen')} generation / {p.get('steps_und')} understanding steps, "
        f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}, {p.get('n_test')} test images"
    )
