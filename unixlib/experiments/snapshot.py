"""Copy a run's headline figures and tables into ``docs/results/<profile>/`` for the README.

``figures/`` is not committed (every run rewrites it); the README embeds this small, committed
snapshot instead, so the page shows results without running anything. Refresh it after a run
with ``make snapshot`` (``python -m unixlib.experiments.snapshot [PROFILE]``) and commit the folder.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from unixlib.config import REPO_ROOT

# The headline outputs of notebooks 04-06, in README order.
FILES = (
    "fig1_summary.png",
    "fig4_prompted_generations.png",
    "table2_understanding.md",
    "table3_generation.md",
    "table_generation_faithfulness.md",
    "table5_joint_optimisation.md",
    "table5_joint_optimisation.png",
    "ablation_coupling.md",
    "ablation_coupling.png",
    "ablation_repa.md",
    "ablation_repa.png",
    "ablation_repa_curves.png",
    "ablation_cleaning.md",
    "ablation_cleaning.png",
    "ablation_verdicts.md",
)


def snapshot(profile: str, root: Path = REPO_ROOT) -> list[Path]:
    """Copy ``FILES`` from ``figures/<profile>/`` to ``docs/results/<profile>/``; every file
    must exist (a missing one is an error naming it and the notebook series to run)."""
    src, dst = root / "figures" / profile, root / "docs" / "results" / profile
    missing = [f for f in FILES if not (src / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{src} lacks {', '.join(missing)}: run `make reproduce PROFILE={profile}` first"
        )
    dst.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(src / f, dst / f)) for f in FILES]


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "smoke"
    try:
        copied = snapshot(name)
    except FileNotFoundError as err:
        sys.exit(f"error: {err}")
    print(f"{len(copied)} files -> docs/results/{name}/")
