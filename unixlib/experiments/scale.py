"""What a run is, in one phrase for every caption: data, resolution, model size, schedule.

A number from a tiny model trained for minutes on synthetic images is not a number from the
paper's 1.5B-per-branch model trained for days on MIMIC-CXR, and a reader must never have to
guess which one a table shows. :func:`describe_run` reads the run directory (the processed
data, each stage's resolved ``config.json``) and :meth:`RunScale.phrase` writes e.g.
"SynthCXR 64 px, tiny preset (9.4M parameters per branch), 2,000 training pairs, rule-cleaned
reports, stages 1/2/3: 300/210/450 steps"; every table and figure caption of notebooks 05 and
06 carries it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from unixlib.config import project_path, stage_dir
from unixlib.data.processed import usable
from unixlib.model.config import preset
from unixlib.model.saving import CONFIG_FILE, read_config
from unixlib.model.unix import parameter_counts

SOURCES = {"synth": "SynthCXR", "mimic": "MIMIC-CXR", "iuxray": "IU X-ray", "folder": "own data"}


@dataclass(frozen=True)
class RunScale:
    """The facts of a run that a caption states (see the module docstring)."""

    source: str  # "SynthCXR", "MIMIC-CXR", ...
    image_size: int  # px of the generation path (the last stage's)
    preset: str
    params_per_branch: int  # one MoT branch + shared embeddings (the paper's "1.5B" view)
    n_train: int  # usable training pairs
    cleaning: str  # "rule-cleaned" / "LLM-cleaned" / "raw"
    steps: dict[int, int] = field(default_factory=dict)  # stage -> steps trained

    def short(self) -> str:
        """ "SynthCXR 64 px, tiny preset": for figure titles."""
        return f"{self.source} {self.image_size} px, {self.preset} preset"

    def phrase(self) -> str:
        """ "SynthCXR 64 px, tiny preset (9.4M parameters per branch), 2,000 training pairs,
        rule-cleaned reports, stages 1/2/3: 300/210/450 steps"."""
        millions = self.params_per_branch / 1e6
        size = f"{millions:.1f}M" if millions < 1000 else f"{millions / 1000:.1f}B"
        text = (
            f"{self.source} {self.image_size} px, {self.preset} preset ({size} parameters per "
            f"branch), {self.n_train:,} training pairs, {self.cleaning} reports"
        )
        if self.steps:
            stages = "/".join(str(s) for s in sorted(self.steps))
            counts = "/".join(f"{self.steps[s]:,}" for s in sorted(self.steps))
            text += f", stage{'s' if len(self.steps) > 1 else ''} {stages}: {counts} steps"
        return text


def _cleaning(frame: pd.DataFrame) -> str:
    status = frame.get("clean_status", pd.Series(dtype=str)).astype(str).str.split(":").str[0]
    if (status == "llm").any():
        return "LLM-cleaned"
    return "rule-cleaned" if (status != "").any() else "raw"


def describe_run(run_dir: str | Path) -> RunScale:
    """The scale of the run in ``run_dir`` (its ``data/processed.parquet`` and the stages'
    ``config.json`` files that exist)."""
    root = project_path(run_dir)
    frame = pd.read_parquet(root / "data" / "processed.parquet")
    configs = {}
    for stage in (1, 2, 3):
        path = project_path(stage_dir(str(root), stage)) / "config.json"
        if path.is_file():
            configs[stage] = json.loads(path.read_text())
    last = configs[max(configs)] if configs else {}
    name = last.get("preset", "tiny")
    final = project_path(stage_dir(str(root), max(configs))) / "final" if configs else None
    if final is not None and (final / CONFIG_FILE).is_file():
        model_config = read_config(final)  # the trained model's own shapes (vocabulary, ...)
    else:
        model_config = preset(name, **last.get("model_overrides", {}))
    counts = parameter_counts(model_config)
    sources = frame["source"].astype(str).unique().tolist() if "source" in frame else []
    return RunScale(
        source=" + ".join(SOURCES.get(s, s) for s in sources) or "unknown data",
        image_size=int(last.get("image_size", 0)),
        preset=name,
        params_per_branch=int(counts["trainable_llm_per_branch"]),
        n_train=int((usable(frame) & (frame["split"] == "train")).sum()),
        cleaning=_cleaning(frame),
        steps={s: int(c["steps"]) for s, c in configs.items()},
    )
