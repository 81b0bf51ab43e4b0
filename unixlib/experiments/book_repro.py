"""The book's reproducibility page: a standard ML reproducibility checklist, answered for a run.

The questions follow the ML Reproducibility Checklist (Pineau et al.) and the NeurIPS paper
checklist: code, data, pretrained weights, hyper-parameters, seeds, variance, compute,
software, evaluation, and what was not reproduced and why. Every answer is read from the run
(``manifest.json``, the parameters each notebook ran with, the processed data), or says that
the run did not record it.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from typing import Any

from unixlib import config
from unixlib.experiments.book_facts import SOURCE_NAMES, RunFacts, scale_line

# Parameters that name pretrained weights or an external model: empty means "none, trained here".
WEIGHT_PARAMS = (
    "janus_dir",
    "tokenizer_dir",
    "vae_dir",
    "repa_encoder",
    "release_dir",
    "raddino_dir",
    "chexbert_checkpoint",
    "chexbert_bert_dir",
)
# Where a run writes: the same in every profile but for its name, so not a hyper-parameter.
PLACES = (config.RUN_DIR_KEY, config.FIGURES_DIR_KEY)


def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=config.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return "unknown (git not found)"
    return out.stdout.strip() or "unknown (not a git checkout)"


def rerun_command(run: RunFacts) -> str:
    """How to run this run again: its profile's ``make reproduce``, or ``make test`` for the
    test run (the smoke profile into ``papermill_runs/test``, under nbval)."""
    profile = run.manifest.get("profile") or run.name
    if (config.PROFILE_DIR / f"{profile}.yaml").is_file():
        return f"`make reproduce PROFILE={profile}`, then `make book PROFILE={profile}`"
    if run.name == "test":
        return "`make test` (its nbval step executes the series into `papermill_runs/test`)"
    return "the notebooks of `notebooks/` with the parameters below (no profile of this name)"


def _code(run: RunFacts) -> str:
    git = run.manifest.get("git") or {}
    if git.get("commit"):
        state = " with uncommitted changes" if git.get("dirty") else " (a clean tree)"
        recorded = f"commit `{git['commit']}`{state}"
    else:
        recorded = "a commit not recorded (no `manifest.json`)"
    return (
        f"**Code.** Ran from {recorded}; this book was built from commit `{_git_head()}`. "
        f"To rerun: {rerun_command(run)}. Every notebook is in the repository's `notebooks/`, "
        "every step in `unixlib`."
    )


def _data(run: RunFacts) -> str:
    source = run.param("01_clean_data", "source", "unknown")
    order = {"train": 0, "validate": 1, "test": 2}
    ordered = sorted(run.splits.items(), key=lambda kv: (order.get(kv[0], 3), kv[0]))
    splits = ", ".join(f"{n:,} {k}" for k, n in ordered) or "not found"
    text = f"**Data.** Source: {SOURCE_NAMES.get(source, source)}; splits: {splits}."
    if source == "synth":
        text += (
            f" SynthCXR is generated deterministically from the seed "
            f"({run.param('01_clean_data', 'seed')}) at {run.param('01_clean_data', 'image_size')}"
            " px: rerunning notebook 01 recreates the same images and reports; nothing is "
            "downloaded. No MIMIC-CXR image or report is used."
        )
    else:
        args = run.param("01_clean_data", "source_args") or {}
        text += f" Read from `{args.get('root', args)}` (see notebook 01 and the data's licence)."
    return text


def given_weights(run: RunFacts) -> dict[str, Any]:
    """``notebook.parameter`` -> path, for every parameter naming weights the run read."""
    return {
        f"{stem}.{key}": value
        for stem, values in run.params.items()
        for key, value in values.items()
        if key in WEIGHT_PARAMS and value
    }


def _weights(run: RunFacts) -> str:
    given = given_weights(run)
    if not given:
        return (
            "**Pretrained weights.** None: every component (vision tower, VAE, both branches, "
            "tokenizer, evaluation encoder) was trained from scratch in this run."
        )
    listed = "; ".join(f"`{k}` = `{v}`" for k, v in sorted(given.items()))
    return f"**Pretrained weights.** Read from local paths: {listed}."


def _defaults(stem: str) -> dict[str, Any]:
    path = config.NOTEBOOK_DIR / f"{stem}.ipynb"
    if not path.is_file():
        return {}
    return {k: p.default for k, p in config.notebook_parameters(path).items()}


def _hyperparameters(run: RunFacts) -> str:
    lines = [
        "**Hyper-parameters.** Every parameter each notebook ran with (as papermill recorded it "
        "in the executed notebook); **bold** ones differ from the notebook's defaults (the "
        "smoke profile)."
    ]
    for stem, values in run.params.items():
        defaults = _defaults(stem)
        shown = [
            f"**`{k}={v!r}`**" if k in defaults and defaults[k] != v else f"`{k}={v!r}`"
            for k, v in values.items()
            if k not in PLACES
        ]
        lines.append(f"- {stem}: " + ", ".join(shown))
    return "\n".join(lines)


def _seeds(run: RunFacts) -> str:
    seeds = {stem: values.get("seed") for stem, values in run.params.items()}
    shown = ", ".join(f"{stem} {seed}" for stem, seed in seeds.items())
    arms = run.param("06_ablations", "seeds")
    text = f"**Seeds.** Per notebook: {shown}."
    if arms:
        text += f" Ablation arms: seeds {arms}."
    return text + (
        " Data generation, initialisation, batching and sampling all draw from these seeds; "
        "machines with and without bf16 instructions train in different precision and give "
        "different (each reproducible) numbers."
    )


def _variance(run: RunFacts) -> str:
    arms = run.param("06_ablations", "seeds") or []
    if "06_ablations" not in run.params:
        spread = "the ablations (notebook 06) did not run, so no variance across seeds is measured."
    elif len(arms) > 1:
        spread = f"the ablations ran {len(arms)} seeds per arm and compare each difference "
        spread += "with the spread across seeds (ablation verdicts)."
    else:
        spread = "the ablations ran one seed per arm, so no variance across seeds is measured."
    return (
        "**Variance and intervals.** Each table reports point estimates of one training run; "
        f"{spread} The results chapter gives the standard error a test set of this size implies."
    )


def _duration(seconds: Any) -> str:
    return "-" if seconds is None else str(dt.timedelta(seconds=round(float(seconds))))


def _compute(run: RunFacts) -> str:
    device = run.manifest.get("device") or {}
    if not device:
        return "**Compute.** Not recorded (no `manifest.json`)."
    gpus = device.get("gpus") or []
    kind = ", ".join(map(str, gpus)) if gpus else "no GPU (CPU only)"
    rows = [
        f"| {n.get('notebook')} | {n.get('status')} | {_duration(n.get('wall_s'))} |"
        for n in run.manifest.get("notebooks", [])
    ]
    return (
        f"**Compute.** {device.get('platform')}, Python {device.get('python')}, "
        f"{device.get('cpu_count')} CPU cores, torch threads {device.get('torch_threads')}, "
        f"{kind}. Whole series: {_duration(run.manifest.get('wall_s'))} "
        "(the runner's wall clock).\n\n| notebook | status | wall time |\n|---|---|---|\n"
        + "\n".join(rows)
    )


def _software(run: RunFacts) -> str:
    packages = run.manifest.get("packages") or {}
    if not packages:
        return "**Software.** Not recorded (no `manifest.json`); the pins are `constraints.txt`."
    listed = ", ".join(f"{k} {v}" for k, v in packages.items())
    return f"**Software.** {listed} (every pin: `constraints.txt`, `environment.yml`)."


def _evaluation(run: RunFacts) -> str:
    chexbert = run.param("05_evaluate", "chexbert_checkpoint")
    raddino = run.param("05_evaluate", "raddino_dir")
    return (
        "**Evaluation.** Report F1 from "
        + ("CheXbert (local weights)" if chexbert else "the project's rule labeler")
        + "; FD, KD, precision/recall/density/coverage from "
        + ("RadDino features" if raddino else "a reference CNN trained on the train split")
        + ". Every number sits beside baselines computed in the same run (notebook 05)."
    )


def not_reproduced(run: RunFacts) -> list[str]:
    """What this run does not reproduce of the paper, each with its reason."""
    out = []
    if run.param("01_clean_data", "source") != "mimic":
        out.append(
            "MIMIC-CXR: not used (credentialed access, research-only licence); the run trains "
            "and tests on "
            + SOURCE_NAMES.get(run.param("01_clean_data", "source", ""), "another source")
            + "."
        )
    if not given_weights(run):
        out.append(
            "Pretrained weights: none are loaded (Janus-Pro-1B, SigLIP, the kl-f16 VAE, RadDino "
            "and CheXbert are not shipped); every component is a small model trained here."
        )
    device = run.manifest.get("device")
    if not device:
        out.append("GPU numbers: not measured (the run recorded no device).")
    elif not device.get("cuda"):
        out.append(
            "GPU numbers: not measured; this run had no GPU (throughput, memory and the "
            "8-GPU recipe of the paper profile are untested here)."
        )
    if run.param("02_train_ar", "preset") != "paper":
        out.append(
            f"Model size and schedule: {scale_line(run)}, not the paper's ~1.5B parameters "
            "per branch and 83,840 steps of batch 256."
        )
    if not run.param("05_evaluate", "chexbert_checkpoint"):
        out.append("CheXbert F1: replaced by the project's rule labeler (no CheXbert weights).")
    if not run.param("05_evaluate", "raddino_dir"):
        out.append("RadDino FD/KD and BioViL-T alignment: replaced by a reference CNN.")
    return out


def reproducibility_sections(run: RunFacts) -> list[str]:
    """The page as Markdown sections."""
    missing = not_reproduced(run)
    return [
        f"# Reproducibility: the {run.name} run\n\n"
        f"{run.description}\n\nScale: {scale_line(run)}. The answers below follow the ML "
        "Reproducibility Checklist (Pineau et al., 2020) and the NeurIPS paper checklist, "
        "filled from what the run recorded.",
        _code(run),
        _data(run),
        _weights(run),
        _hyperparameters(run),
        _seeds(run),
        _variance(run),
        _compute(run),
        _software(run),
        _evaluation(run),
        "## What is not reproduced, and why\n\n"
        + ("\n".join(f"- {m}" for m in missing) or "Nothing this page can detect."),
    ]
