"""``reproduce``: the notebook series, or its dry run."""

from __future__ import annotations

import argparse
import sys

from unixlib.cli.common import PROFILES, AddCommand, csv_list


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.dry_run:
        from unixlib.experiments.dryrun import run_cli

        return run_cli(args.profile, args.set, args.gpus, args.gpu_memory_gb)
    from unixlib.experiments import series as runs

    try:
        runs.reproduce(
            args.profile,
            only=args.only,
            start=args.start,
            overrides=args.set,
            log_output=args.log_output,
            prepare_only=args.prepare_only,
            resume=args.resume,
        )
    except runs.SeriesInterrupted as err:  # preempted: its checkpoint is written
        print(f"error: {err}", file=sys.stderr)
        return runs.INTERRUPTED_STATUS
    except runs.SeriesError as err:  # a notebook failed: not a user error
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def add_commands(add: AddCommand) -> None:
    """reproduce: run (or check) the notebook series."""
    p = add("reproduce", cmd_reproduce, "run the notebook series with a profile (papermill)")
    p.add_argument(
        "--profile", default="smoke", choices=PROFILES, help="papermill_runs/profiles/<name>.yaml"
    )
    p.add_argument("--only", type=csv_list, help="comma-separated notebooks, e.g. 01,03")
    p.add_argument("--from", dest="start", help="start at this notebook, e.g. 02")
    p.add_argument("--set", action="append", metavar="[NB.]KEY=VALUE", help="override a parameter")
    p.add_argument(
        "--log-output",
        action="store_true",
        help="stream each notebook's printed output and progress to the terminal",
    )
    p.add_argument(
        "--prepare-only",
        action="store_true",
        help="write the parameterized notebooks to the run directory without executing them "
        "(make test runs them under nbval)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check paths, weights (meta device), tokenizer, GPUs and memory; run nothing",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="with --from NN: continue NN's training stage from its newest intact checkpoint "
        "(after a preemption, exit status 75) instead of starting it again",
    )
    p.add_argument("--gpus", type=int, help="dry run: GPUs of the target machine")
    p.add_argument("--gpu-memory-gb", type=float, help="dry run: memory of each of its GPUs")
