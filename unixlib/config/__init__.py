"""The bottom layer: profiles, project paths, run-directory layout, device resolution, progress.

Everything else in ``unixlib`` may import it; it imports nothing else of ``unixlib``.
``unixlib.config.device`` (torch) is imported on demand, not here, so that the command line
starts quickly.
"""

from unixlib.config.paths import (
    NOTEBOOK_DIR,
    PACKAGE_DIR,
    PROFILE_DIR,
    REPO_ROOT,
    latent_cache_path,
    project_path,
    shown,
    stage_dir,
    vae_dir,
)
from unixlib.config.profiles import (
    FIGURES_DIR_KEY,
    REQUIREMENTS,
    RUN_DIR_KEY,
    Parameter,
    Profile,
    ProfileError,
    load,
    notebook_parameters,
    notebooks,
)

__all__ = [
    "FIGURES_DIR_KEY",
    "NOTEBOOK_DIR",
    "PACKAGE_DIR",
    "PROFILE_DIR",
    "REPO_ROOT",
    "REQUIREMENTS",
    "RUN_DIR_KEY",
    "Parameter",
    "Profile",
    "ProfileError",
    "latent_cache_path",
    "load",
    "notebook_parameters",
    "notebooks",
    "project_path",
    "shown",
    "stage_dir",
    "vae_dir",
]
