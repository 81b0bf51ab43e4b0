"""``python -m unixlib reproduce --profile NAME --dry-run``: check a profile before any compute.

Every check runs, and every problem is listed at once, each with what to do:

* parameters: the profile against the notebooks (types, unknown keys) and each stage's
  ``TrainConfig`` (its own validation);
* paths (:mod:`.dryrun_paths`): every external path the profile names exists (data, weights,
  tokenizer, annotations);
* weights (:mod:`.dryrun_weights`): each weight directory loads **on the meta device** (shapes
  only, no data read): the Janus-Pro-1B checkpoint into the stage-1 model, the official UniX
  checkpoint (with its VAE) into the released model, an LDM VAE into the kl-f16 autoencoder;
  key coverage is reported;
* tokenizer (:mod:`.dryrun_weights`): its special ids and size fit the embedding rows of the
  weights it will index;
* data (:mod:`.dryrun_paths`): the MIMIC-CXR-JPG layout (the three CSVs, ``files/``), the test annotation CSV
  (columns, every listed image present) and the release's understanding test set
  ``test_data.json`` (every entry well formed, every image present);
* machine: GPUs and the per-GPU memory estimate of every training stage
  (:mod:`unixlib.train.memory`) against the profile's ``requirements`` (or ``--gpus`` /
  ``--gpu-memory-gb`` to check for another machine);
* the evaluation protocol (:mod:`.dryrun_protocol`): the test files, the generation training
  annotations, LLM cleaning, and each evaluator of notebooks 05 and 06 (which one, its weights,
  its input resolution).
"""

from __future__ import annotations

from typing import Any

from unixlib import config
from unixlib.experiments import dryrun_protocol as protocol
from unixlib.experiments.dryrun_paths import Check, check_mimic, check_paths
from unixlib.experiments.dryrun_weights import check_weights

__all__ = ["Check", "dry_run", "report", "run_cli", "train_cli"]


def check_stages(profile: config.Profile, gpus: int | None, memory_gb: float | None) -> list[Check]:
    """Each stage's TrainConfig is valid; GPUs and the memory estimate fit."""
    from unixlib.model.config import preset
    from unixlib.train.config import STAGE_NOTEBOOKS, stage_config
    from unixlib.train.memory import GB, estimate_memory

    req = profile.requirements
    gpus = gpus if gpus is not None else req.get("gpus")
    memory_gb = memory_gb if memory_gb is not None else req.get("gpu_memory_gb")
    if gpus is None or memory_gb is None:
        detected = _detect_gpus()
        gpus = detected[0] if gpus is None else gpus
        memory_gb = detected[1] if memory_gb is None else memory_gb
    out = []
    nb2 = profile.params["02_train_ar"]
    for stage, nb in STAGE_NOTEBOOKS.items():
        params = profile.params[nb]
        try:
            cfg = stage_config(stage, params)
        except (ValueError, TypeError) as err:
            out.append(Check(f"stage {stage} parameters", False, str(err), f"fix {nb}'s values"))
            continue
        nproc = int(params.get("nproc", 1))
        if params.get("release_dir"):
            out.append(Check(f"stage {stage}", True, "loads the official weights (no training)"))
            continue
        if params.get("device") == "cuda" or nproc > 1:
            ok = gpus >= nproc
            out.append(
                Check(
                    f"stage {stage} GPUs",
                    ok,
                    f"needs {nproc}, has {gpus}",
                    "run on a node with enough GPUs, or lower nproc and raise "
                    "grad_accum (same global batch)",
                )
            )
        sizes = {"image_size_und" if stage == 1 else "image_size_gen": cfg.image_size}
        try:
            mc = preset(nb2["preset"], **sizes)
        except ValueError as err:
            out.append(Check(f"stage {stage} model", False, str(err), f"fix {nb}.image_size"))
            continue
        est = estimate_memory(mc, cfg, nproc)
        global_batch = cfg.batch_size * cfg.grad_accum * nproc
        if memory_gb:
            out.append(
                Check(
                    f"stage {stage} memory",
                    est.fits(memory_gb),
                    f"{est} (global batch {global_batch}) vs {memory_gb} GB per GPU",
                    f"lower {nb}.batch_size and raise grad_accum, or set "
                    f"{nb}.activation_checkpointing=true",
                )
            )
        else:
            out.append(
                Check(
                    f"stage {stage} memory",
                    True,
                    f"{est.total / GB:.1f} GB per process, estimate (no GPU memory to compare with)",
                )
            )
    return out


def _detect_gpus() -> tuple[int, float | None]:
    import torch

    if not torch.cuda.is_available():
        return 0, None
    n = torch.cuda.device_count()
    return n, torch.cuda.get_device_properties(0).total_memory / 1024**3


def dry_run(
    name: str,
    overrides: list[str] | None = None,
    gpus: int | None = None,
    gpu_memory_gb: float | None = None,
) -> list[Check]:
    """All checks of the profile ``name`` (see the module docstring), in order."""
    try:
        profile = config.load(name, overrides)
    except config.ProfileError as err:
        return [Check("profile", False, str(err), "fix the profile or the --set value")]
    checks = [Check("profile", True, f"{name}: parameters valid against the notebooks")]
    checks += check_paths(profile)
    checks += check_mimic(profile)
    checks += check_weights(profile)
    checks += check_stages(profile, gpus, gpu_memory_gb)
    checks += protocol.test_files(profile)
    checks += protocol.check_annotation_files(profile)
    checks += protocol.check_cleaning(profile)
    checks += protocol.check_evaluators(profile)
    return checks


def report(checks: list[Check]) -> tuple[str, bool]:
    """The printed report (failures repeated at the end with their fixes) and overall ok."""
    failed = [c for c in checks if not c.ok]
    lines = [str(c) for c in checks]
    if failed:
        lines += ["", f"{len(failed)} problem(s); nothing was run:"]
        lines += [f"  - {c.item}: {c.fix or c.detail}" for c in failed]
    else:
        lines += ["", "dry run passed: every path, weight, tokenizer and memory check is ok"]
    return "\n".join(lines), not failed


def run_cli(name: str, overrides: list[str] | None, gpus: int | None, memory: float | None) -> int:
    """Print the report; exit status 0 when every check passed, else 1."""
    text, ok = report(dry_run(name, overrides, gpus, memory))
    print(text)
    return 0 if ok else 1


def train_cli(
    cfg: Any, world_size: int, resume: bool, preset_name: str | None, is_main: bool
) -> int:
    """``python -m unixlib train ... --dry-run``: print the run's plan and its checks
    (:mod:`unixlib.train.plan`; rank 0 only under torchrun); 0 when every check passed."""
    from unixlib.train.plan import plan

    lines, found = plan(cfg, world_size, resume, preset_name)
    checks = [Check(c.item, c.ok, c.detail, c.fix) for c in found]
    failed = [c for c in checks if not c.ok]
    if is_main:
        print("\n".join([*lines, *map(str, checks)]))
        print(
            f"{len(failed)} problem(s): fix them before launching"
            if failed
            else "dry run passed: the run can start"
        )
    return 1 if failed else 0
