"""``train``: one training stage, from a profile or a saved config (torchrun-able)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from unixlib.cli.common import PROFILES, AddCommand


def cmd_train(args: argparse.Namespace) -> int:
    from unixlib import config
    from unixlib.train.config import STAGE_NOTEBOOKS, TrainConfig, stage_config
    from unixlib.train.loop import train

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
    result = train(
        cfg, resume=args.resume, progress=not args.no_progress, report_to=args.report_to or ()
    )
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument(
        "--report-to",
        action="append",
        choices=["tensorboard"],
        help="also log metrics to TensorBoard (RUN_DIR/tensorboard; needs the tensorboard extra)",
    )
