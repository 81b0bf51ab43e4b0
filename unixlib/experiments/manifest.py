"""``manifest.json`` of a series run: what ran (notebooks, status, wall time, outputs), with
what (git commit, profile and resolved parameters, package versions, device, seeds), and the
figure files it wrote; merged across runs of some notebooks (``--only`` / ``--from``)."""

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

# Packages whose versions every manifest records.
TRACKED_PACKAGES = (
    "torch",
    "transformers",
    "diffusers",
    "accelerate",
    "tokenizers",
    "numpy",
    "pandas",
    "scikit-learn",
    "pydicom",
    "papermill",
    "matplotlib",
)


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


@dataclass
class NotebookRun:
    notebook: str
    status: str  # "ok" | "failed" | "interrupted" | "prepared" (written, not executed)
    wall_s: float
    output: str
    error: str | None = None
    started_unix: float | None = None  # when this notebook started (entries survive merges)
    commit: str | None = None  # the git commit it ran at
    outputs: dict[str, int] | None = None  # inline images, stream outputs (see output_counts)
    stage: int | None = None  # interrupted: the training stage and the step it reached
    step: int | None = None


# An executed notebook is a document: its figures inline, and progress in progress.log.
MAX_STREAM_OUTPUTS = 40


def output_counts(path: Path) -> dict[str, int]:
    """``{"images", "streams", "printed_figures"}`` of an executed notebook: inline PNGs,
    stream outputs, and figures printed as ``<Figure size ...>`` text instead of drawn."""
    nb = json.loads(path.read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    data = [o.get("data", {}) for o in outputs]
    return {
        "images": sum("image/png" in d for d in data),
        "streams": sum(o.get("output_type") == "stream" for o in outputs),
        "printed_figures": sum(
            "image/png" not in d and "<Figure size" in "".join(d.get("text/plain", ""))
            for d in data
        ),
    }


def _document_warnings(stem: str, counts: dict[str, int]) -> list[str]:
    out = []
    if not counts["images"]:
        out.append(f"{stem}: no inline figure in the executed notebook")
    if counts["printed_figures"]:
        out.append(f"{stem}: {counts['printed_figures']} figure(s) printed as text, not drawn")
    if counts["streams"] > MAX_STREAM_OUTPUTS:
        out.append(f"{stem}: {counts['streams']} stream outputs (> {MAX_STREAM_OUTPUTS})")
    return out


def _written_since(profile: config.Profile, t0: float) -> set[str]:
    """Figure files (under every notebook's ``figures_dir``) modified at or after ``t0``."""
    dirs = {config.project_path(p[config.FIGURES_DIR_KEY]) for p in profile.params.values()}
    return {
        config.shown(f)
        for d in dirs
        for f in d.glob("*")
        if f.is_file() and f.stat().st_mtime >= t0
    }


def _write_manifest(
    path: Path,
    profile: config.Profile,
    runs: list[NotebookRun],
    t0: float,
    previous: dict[str, Any] | None = None,
) -> None:
    """Write ``manifest.json``: this run's notebooks and the figures it wrote; with
    ``previous`` (a run of some notebooks), merged into the manifest it extends."""
    ran = [r.notebook for r in runs]
    seeds = {stem: profile.params[stem].get("seed") for stem in ran}
    body: dict[str, Any] = {
        "profile": profile.name,
        "description": profile.description,
        "git": git_state(),
        "started_unix": t0,
        "wall_s": round(time.time() - t0, 2),
        "seed": seeds,
        "device": device_info(),
        "packages": package_versions(),
        "parameters": {stem: profile.params[stem] for stem in ran},
        "overridden": {stem: profile.overridden.get(stem, {}) for stem in ran},
        "notebooks": [r.__dict__ for r in runs],
        "figures": sorted(_written_since(profile, t0)),
    }
    if previous is not None:
        body = _merge(previous, body, order=list(profile.params))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, sort_keys=False, default=str) + "\n")


def _merge(old: dict[str, Any], new: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """``new`` (a run of some notebooks) merged into ``old``: per-notebook entries of the
    notebooks that ran again are replaced, the others kept (each entry records its commit and
    start); figures are the union of the files still present. Earlier runs are listed in
    ``runs`` with their commit, start and notebooks."""
    merged = dict(new)
    rank = {stem: i for i, stem in enumerate(order)}
    entries = {n["notebook"]: n for n in old.get("notebooks", [])}
    entries.update({n["notebook"]: n for n in new["notebooks"]})
    merged["notebooks"] = sorted(entries.values(), key=lambda n: rank.get(n["notebook"], 99))
    for key in ("seed", "parameters", "overridden"):
        merged[key] = {**old.get(key, {}), **new[key]}
    kept = {f for f in old.get("figures", []) if config.project_path(f).is_file()}
    merged["figures"] = sorted(kept | set(new["figures"]))
    earlier = old.get("runs") or [_run_summary(old)]
    merged["runs"] = [*earlier, _run_summary(new)]
    return merged


def _run_summary(body: dict[str, Any]) -> dict[str, Any]:
    notebooks = [n["notebook"] for n in body.get("notebooks", [])]
    return {
        "git": body.get("git"),
        "started_unix": body.get("started_unix"),
        "notebooks": notebooks,
    }
