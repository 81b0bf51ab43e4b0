"""Where things live: the repository, its notebooks and profiles, and a run directory's layout.

A run directory (``papermill_runs/<profile>/`` by default) holds everything one series writes::

    data/                 notebook 01: processed.parquet, images/, tokenizer/, rejects.csv
    vae/                  notebook 03: the VAE trained on SynthCXR (profiles without a pretrained one)
    latents/train_<px>.safetensors   training-split latents, encoded once per resolution
    stage<N>/             one training stage: config.json, metrics.jsonl, checkpoints/, final/
    eval/                 notebook 05: cached reference encoders, generated samples
    ablations/            notebook 06: one folder per arm and seed
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = PACKAGE_DIR.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PROFILE_DIR = REPO_ROOT / "papermill_runs" / "profiles"


def project_path(path: str | Path) -> Path:
    """Resolve a path parameter: absolute paths stay, relative ones are relative to the repo root.

    Notebooks run with different working directories (papermill from the root, JupyterLab
    from ``notebooks/``); anchoring at the repository root makes parameters mean the same
    thing everywhere.
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def shown(path: str | Path) -> str:
    """``path`` as a message shows it: relative to the repository when inside it (so executed
    notebooks and logs do not print one machine's absolute paths), else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def stage_dir(run_root: str, stage: int) -> str:
    """The folder of training stage ``stage`` (1-3) of a run."""
    return f"{run_root}/stage{stage}"


def vae_dir(run_root: str) -> str:
    """Where notebook 03 puts the VAE it trains (SynthCXR profiles)."""
    return f"{run_root}/vae"


def latent_cache_path(run_root: str, size: int) -> str:
    """Training-split latents at ``size`` px, encoded once by notebooks 03/04."""
    return f"{run_root}/latents/train_{size}.safetensors"
