"""``train``: one training stage, from a profile or a saved config (torchrun-able)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from unixlib.cli.common import PROFILES, AddCommand


def cmd_train(args: argparse.Namespace) -> int:
    from unixlib import config
    from unixlib.train.config import STAGE_NOTEBOOKS, TrainConfig, stage_config
    from unixlib.train.disk import WRITE_FAILED_STATUS, CheckpointWriteError
    from unixlib.train.loop import train
    from unixlib.train.preemption import PREEMPTED_STATUS, Preempted

    if args.config:
        cfg = TrainConfig.from_dict(json.loads(Path(args.config).read_text()))
    elif args.stage is None:
        raise ValueError(
            "train: give --stage 1|2|3 (with --profile) or --config a run's config.json"
        )
    else:
        params = config.load(args.profile).for_notebook(STAGE_NOTEBOOKS[args.stage])
        cfg = stage_config(args.stage, params)
    flags = {
        "max_steps": "steps",
        "checkpoint_every": "checkpoint_every",
        "run_dir": "run_dir",
        "seed": "seed",
        "parallel": "parallel",
    }
    overrides = {f: getattr(args, a) for a, f in flags.items() if getattr(args, a) is not None}
    cfg = dataclasses.replace(cfg, **overrides)  # runs TrainConfig's validation again
    rank = int(os.environ.get("RANK", "0"))  # torchrun sets it; rank 0 speaks for the run
    if args.dry_run:
        from unixlib.experiments.dryrun import train_cli

        world = int(os.environ.get("WORLD_SIZE", "1"))
        hint = None if args.config else config.load(args.profile).params["02_train_ar"]["preset"]
        return train_cli(cfg, world, args.resume, hint, is_main=rank == 0)
    try:
        result = train(
            cfg, resume=args.resume, progress=not args.no_progress, report_to=args.report_to or ()
        )
    except Preempted:  # the loop logged its one line
        return PREEMPTED_STATUS
    except CheckpointWriteError as err:
        if os.environ.get("UNIXLIB_TRACEBACK"):
            raise
        if rank == 0:
            print(f"error: {err}", file=sys.stderr)
        return WRITE_FAILED_STATUS
    print(f"final model: {result.final_dir}")
    return 0


def add_commands(add: AddCommand) -> None:
    """train."""
    p = add("train", cmd_train, "train one stage (1 und SFT, 2 gen PT, 3 gen FT); torchrun-able")
    p.add_argument(
        "--profile",
        default="smoke",
        choices=PROFILES,
        help="take the stage's parameters from a profile",
    )
    p.epilog = (
        "exit status: 0 done, 1 failed, 2 user error, 74 a checkpoint could not be written "
        "(a full disk: free space, then --resume), 75 stopped by SIGTERM/SIGUSR1 after a "
        "checkpoint of the step reached (requeue, then --resume)"
    )
    p.add_argument("--stage", type=int, choices=[1, 2, 3], help="required unless --config")
    p.add_argument("--config", help="a TrainConfig JSON (e.g. a run's config.json) instead")
    p.add_argument("--max-steps", type=int, help="override the number of steps")
    p.add_argument("--checkpoint-every", type=int, help="checkpoint interval in steps")
    p.add_argument("--run-dir", help="override the run directory")
    p.add_argument("--seed", type=int, help="override the seed")
    p.add_argument(
        "--parallel",
        choices=["auto", "ddp", "fsdp"],
        help="under torchrun: ddp or fsdp (auto = fsdp for the paper preset)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (steps, world, global batch, memory, checkpoint size and disk, "
        "inputs) and train nothing",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument(
        "--report-to",
        action="append",
        choices=["tensorboard"],
        help="also log metrics to TensorBoard (RUN_DIR/tensorboard; needs the tensorboard extra)",
    )
