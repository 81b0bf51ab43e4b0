"""The papermill series runner: ``python -m unixlib reproduce --profile NAME``.

Executes ``notebooks/NN_*.ipynb`` in order with the profile's parameters into
``papermill_runs/<profile>/`` (figures and tables land in ``figures/<profile>/``, written by the
notebooks through :mod:`unixlib.viz`), and records ``manifest.json``: git commit, profile,
resolved parameters, package versions, device, seed, and each notebook's status and wall time.
It stops at the first failing notebook, naming the notebook and the cell, and leaves earlier
outputs in place. This module orchestrates only: it imports neither the model nor training.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unixlib import config
from unixlib.runlock import RunLock

# Packages whose versions every manifest records.
TRACKED_PACKAGES = (
    "torch", "transformers", "diffusers", "accelerate", "tokenizers", "numpy", "pandas",
    "scikit-learn", "pydicom", "papermill", "matplotlib",
)  # fmt: skip


class SeriesError(RuntimeError):
    """A notebook of the series failed; the message names it and the failing cell."""


def git_state(root: Path = config.REPO_ROOT) -> dict[str, Any]:
    """Commit hash and whether the working tree has uncommitted changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> dict[str, Any]:
    """What the run executes on. torch is imported lazily and only for its device query."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["cuda"] = torch.cuda.is_available()
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # the manifest is still useful without torch
        info["cuda"] = None
    return info


def select(stems: list[str], only: list[str] | None = None, start: str | None = None) -> list[str]:
    """Pick notebooks by two-digit prefix or full stem: ``only=["01", "03"]``, ``start="02"``."""

    def match(token: str) -> str:
        hits = [s for s in stems if s == token or s.split("_", 1)[0] == token.zfill(2)]
        if len(hits) != 1:
            raise SeriesError(f"{token!r} names no notebook of the series ({', '.join(stems)})")
        return hits[0]

    chosen = stems
    if start is not None:
        chosen = chosen[stems.index(match(start)) :]
    if only:
        wanted = {match(t) for t in only}
        chosen = [s for s in chosen if s in wanted]
    return chosen


def _rel(path: Path) -> str:
    """A path relative to the repository root when it lies inside it (for readable manifests)."""
    try:
        return str(path.resolve().relative_to(config.REPO_ROOT))
    except ValueError:
        return str(path)


@dataclass
class NotebookRun:
    notebook: str
    status: str  # "ok" | "failed" | "skipped"
    wall_s: float
    output: str
    error: str | None = None


def _write_manifest(
    path: Path, profile: config.Profile, runs: list[NotebookRun], t0: float
) -> None:
    seeds = {stem: p.get("seed") for stem, p in profile.params.items()}
    body = {
        "profile": profile.name,
        "description": profile.description,
        "git": git_state(),
        "started_unix": t0,
        "wall_s": round(time.time() - t0, 2),
        "seed": seeds,
        "device": device_info(),
        "packages": package_versions(),
        "parameters": profile.params,
        "overridden": profile.overridden,
        "notebooks": [r.__dict__ for r in runs],
        "figures": sorted(
            {
                _rel(p)
                for stem in profile.params
                for p in config.project_path(profile.params[stem][config.FIGURES_DIR_KEY]).glob("*")
                if p.is_file()
            }
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, sort_keys=False, default=str) + "\n")


def reproduce(
    profile_name: str,
    only: list[str] | None = None,
    start: str | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    notebook_dir: Path = config.NOTEBOOK_DIR,
    profile_dir: Path = config.PROFILE_DIR,
) -> list[NotebookRun]:
    """Run the series for one profile. Raises :class:`SeriesError` at the first failure.

    ``only`` / ``start`` pick notebooks (see :func:`select`); ``overrides`` are
    ``[NB.]KEY=VALUE`` strings that win over the profile file.
    """
    import papermill as pm  # heavy import, only when running

    profile = config.load(
        profile_name, overrides, profile_dir=profile_dir, notebook_dir=notebook_dir
    )
    stems = select([p.stem for p in config.notebooks(notebook_dir)], only, start)
    first = profile.params[stems[0]] if stems else {}
    out_dir = config.project_path(first.get(config.RUN_DIR_KEY, f"papermill_runs/{profile_name}"))
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out_dir).acquire()  # a second series (or train) on out_dir stops here
    profile.save(out_dir / "profile_resolved.json")
    manifest = out_dir / "manifest.json"
    t0, runs = time.time(), []
    print(
        f"profile {profile.name!r}: {profile.description}\nnotebooks: {', '.join(stems)}",
        flush=True,
    )
    for i, stem in enumerate(stems, 1):
        params = profile.for_notebook(stem)
        output = out_dir / f"{stem}.ipynb"
        print(f"[{i}/{len(stems)}] {stem} -> {_rel(output)}", flush=True)
        t1 = time.time()
        try:
            pm.execute_notebook(
                str(notebook_dir / f"{stem}.ipynb"),
                str(output),
                parameters=params,
                cwd=str(config.REPO_ROOT),
                kernel_name="python3",
                progress_bar=progress,
                log_output=False,
            )
        except pm.PapermillExecutionError as err:
            msg = (
                f"{stem} failed in cell {err.cell_index} ({err.ename}: {err.evalue}); see {output}"
            )
            runs.append(NotebookRun(stem, "failed", round(time.time() - t1, 2), str(output), msg))
            _write_manifest(manifest, profile, runs, t0)
            lock.release()
            raise SeriesError(msg) from err
        runs.append(NotebookRun(stem, "ok", round(time.time() - t1, 2), str(output)))
        print(f"    ok in {runs[-1].wall_s:.1f} s", flush=True)
        _write_manifest(manifest, profile, runs, t0)
    lock.release()
    print(f"done in {time.time() - t0:.1f} s; manifest: {_rel(manifest)}")
    return runs
