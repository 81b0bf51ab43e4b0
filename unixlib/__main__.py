"""Command line of the UniX reproduction: python -m unixlib <command> (also installed as unixlib).

Each command parses its flags here and calls one library function; heavy modules are imported
only by the command that needs them. A user error (a missing path, an unknown profile, an
unreadable file, a locked run directory) prints one line "error: ..." and exits with 2
(UNIXLIB_TRACEBACK=1 shows the traceback instead).

Exit statuses of ``train`` and ``reproduce`` beyond 0 (done), 1 (failed) and 2 (user error):
75 = stopped by a preemption signal after writing a checkpoint of the step reached: requeue and
run the same command with --resume (train/preemption.py); 74 = a checkpoint could not be
written (a full disk), one line "error: ...": free space, then --resume (train/disk.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from unixlib import __version__
from unixlib.cli_model import add_model_commands
from unixlib.runlock import RunLockedError

DESCRIPTION = "UniX reproduction: chest X-ray report generation and image generation in one model."
EXAMPLES = """examples:
  python -m unixlib reproduce --profile smoke           run the notebook series (CPU, minutes)
  python -m unixlib train --stage 1 --max-steps 20      train one stage of the smoke profile
  python -m unixlib train --stage 1 --resume            continue from the newest intact checkpoint
  python -m unixlib train --profile paper --stage 2 --dry-run   the plan: batch, memory, disk, inputs
  python -m unixlib describe --model papermill_runs/smoke/stage3/final chest.png scan.dcm
  python -m unixlib draw --model papermill_runs/smoke/stage3/final \\
      --report "Moderate cardiomegaly. Small left pleural effusion." --out drawn/
  python -m unixlib model-info --preset paper           parameter counts, no weights allocated

"python -m unixlib COMMAND --help" lists a command's flags.
"""
# A user error: the command's input is wrong, not the code. One line, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RunLockedError)
USER_ERROR_STATUS = 2


class _Parser(argparse.ArgumentParser):
    """argparse with the project's one-line error style."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog.split()[-1]}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(USER_ERROR_STATUS)


class _LazyChoices:
    """Choices computed on first use, so ``--help`` of other commands imports nothing heavy."""

    def __init__(self, load: Callable[[], list[str]]) -> None:
        self._load = load

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __contains__(self, item: object) -> bool:
        return item in self._load()


def _profiles() -> list[str]:
    from unixlib.config import PROFILE_DIR

    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _presets() -> list[str]:
    from unixlib.model.config import PRESETS

    return sorted(PRESETS)


PROFILES, PRESETS = _LazyChoices(_profiles), _LazyChoices(_presets)


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.dry_run:
        from unixlib.dryrun import run_cli

        return run_cli(args.profile, args.set, args.gpus, args.gpu_memory_gb)
    from unixlib import runs

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


def cmd_prepare(args: argparse.Namespace) -> int:
    from unixlib.data.sources.prepare import TooManyRejectsError, prepare

    # CLI flag -> source argument, per source (see each source module's ``candidates``).
    per_source = {
        "synth": {
            "n_train": "n_train",
            "n_validate": "n_validate",
            "n_test": "n_test",
            "seed": "seed",
        },
        "mimic": {"root": "root", "reports_root": "reports_root", "image_format": "image_format"},
        "iuxray": {"root": "reports_dir", "images": "image_dir", "views_csv": "views_csv"},
        "folder": {
            "root": "root",
            "csv": "csv",
            "image_col": "image_col",
            "report_col": "report_col",
            "labels_col": "labels_col",
            "split_col": "split_col",
            "view_col": "view_col",
        },
    }
    mapping = per_source[args.source]
    given = {
        flag
        for flag, value in vars(args).items()
        if value is not None and flag in {f for m in per_source.values() for f in m}
    }
    stray = sorted(given - set(mapping) - {"seed"})
    if stray:
        print(
            f"error: --source {args.source} takes no {', '.join('--' + f.replace('_', '-') for f in stray)}",
            file=sys.stderr,
        )
        return 2
    source_args = {
        arg: getattr(args, flag) for flag, arg in mapping.items() if getattr(args, flag) is not None
    }
    try:
        result = prepare(
            args.source,
            Path(args.out),
            image_size=args.image_size,
            max_reject_frac=args.max_reject_frac,
            **source_args,
        )
    except TooManyRejectsError as err:  # the data failed its checks (rejects.csv)
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"{result.n_rows} rows -> {result.manifest_path}; {result.n_rejected} rejected -> {result.rejects_path}"
    )
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from unixlib.data.text.clean import clean_manifest
    from unixlib.data.text.llm_clean import LLMConfig, LLMError

    llm = None
    if args.llm_base_url or args.llm_model:
        if not (args.llm_base_url and args.llm_model):
            print("error: --llm-base-url and --llm-model go together", file=sys.stderr)
            return 2
        llm = LLMConfig(
            base_url=args.llm_base_url,
            model=args.llm_model,
            api_key_env=args.llm_api_key_env,
            concurrency=args.llm_concurrency,
        )
    cache = Path(args.cache_dir) if args.cache_dir else None
    try:
        stats = clean_manifest(Path(args.inp), Path(args.out), llm=llm, cache_dir=cache)
    except LLMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"rows": stats.n_rows, "by_status": stats.by_status}, indent=2))
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from unixlib.data.text.labeler import label_csv

    frame = label_csv(Path(args.inp), args.text_cols, Path(args.out))
    print(f"labelled {len(frame)} rows -> {args.out}")
    return 0


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
        from unixlib.dryrun import train_cli

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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from unixlib import config
    from unixlib.eval.outputs import evaluate_run
    from unixlib.eval.pipeline import EvalSettings

    overrides = [f"05_evaluate.{item}" for item in args.set or []]
    params = config.load(args.profile, overrides).for_notebook("05_evaluate")
    params.update(run_dir=args.run_dir, stage=args.stage)
    settings = EvalSettings.from_params(params)
    summary = evaluate_run(settings, Path(args.out), device=params.get("device", "auto"))
    print("\n".join(summary["verdicts"]))
    print(f"tables, figures and generated samples -> {args.out} ({summary['seconds']} s)")
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from unixlib.model.config import preset
    from unixlib.model.unix import parameter_counts

    print(json.dumps(parameter_counts(preset(args.preset)), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="unixlib",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"unixlib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, Callable[[argparse.Namespace], int]] = {}

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        commands[name] = func
        p = sub.add_parser(name, help=help_, description=help_)  # a _Parser, as the parent
        p.set_defaults(func=func)
        return p

    p = add("reproduce", cmd_reproduce, "run the notebook series with a profile (papermill)")
    p.add_argument(
        "--profile", default="smoke", choices=PROFILES, help="papermill_runs/profiles/<name>.yaml"
    )
    p.add_argument("--only", type=_csv_list, help="comma-separated notebooks, e.g. 01,03")
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

    p = add("prepare", cmd_prepare, "build DIR/manifest.parquet + image cache from a data source")
    p.add_argument("--source", required=True, choices=["synth", "mimic", "iuxray", "folder"])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--image-size", type=int, default=64, help="cached image side in pixels")
    p.add_argument(
        "--max-reject-frac", type=float, default=0.05, help="fail above this reject share"
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--n-train", type=int, help="synth: training images")
    p.add_argument("--n-validate", type=int, help="synth: validation images")
    p.add_argument("--n-test", type=int, help="synth: test images")
    p.add_argument("--root", help="mimic: dataset root; iuxray: XML folder; folder: image root")
    p.add_argument("--reports-root", help="mimic: folder of report .txt files if separate")
    p.add_argument("--images", help="iuxray: folder of PNGs")
    p.add_argument("--views-csv", help="iuxray: CSV with image_id,view (else views are UNKNOWN)")
    p.add_argument("--csv", help="folder: CSV naming images (paths relative to --root)")
    p.add_argument("--image-col", help="folder: CSV column with the image path")
    p.add_argument("--report-col", help="folder: CSV column with the report text")
    p.add_argument("--labels-col", help="folder: CSV column with '|'-separated findings")
    p.add_argument("--split-col", help="folder: CSV column with train/validate/test")
    p.add_argument("--view-col", help="folder: CSV column with the view (PA/AP/...)")
    p.add_argument("--image-format", choices=["jpg", "dcm"], help="mimic: JPG or DICOM tree")

    p = add("clean", cmd_clean, "clean reports (rules, then an LLM with self-judgment if given)")
    p.add_argument("--in", dest="inp", required=True, help="input manifest.parquet")
    p.add_argument("--out", required=True, help="output manifest.parquet")
    p.add_argument("--llm-base-url", help="OpenAI-compatible API base URL")
    p.add_argument("--llm-model", help="chat model name")
    p.add_argument("--llm-api-key-env", default="UNIX_LLM_API_KEY", help="env var holding the key")
    p.add_argument("--llm-concurrency", type=int, default=4, help="parallel requests")
    p.add_argument("--cache-dir", help="on-disk cache of LLM replies (resumable)")

    p = add("label", cmd_label, "label report text with the CheXpert-style rule labeler")
    p.add_argument("--in", dest="inp", required=True, help="input CSV")
    p.add_argument("--text-cols", type=_csv_list, required=True, help="e.g. findings,impression")
    p.add_argument("--out", required=True, help="output CSV")

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

    p = add("evaluate", cmd_evaluate, "regenerate Tables 2-4 and Fig. 1 for a trained run")
    p.add_argument(
        "--run-dir", required=True, help="a run of the series, e.g. papermill_runs/smoke"
    )
    p.add_argument(
        "--stage",
        type=int,
        default=3,
        choices=[2, 3],
        help="evaluate stage 3 (and stage 2's generations) or stage 2 alone",
    )
    p.add_argument("--out", required=True, help="folder for the tables, figures and samples")
    p.add_argument(
        "--profile", default="smoke", choices=PROFILES, help="take notebook 05's parameters from it"
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a parameter of notebook 05, e.g. n_test=50",
    )

    p = add("model-info", cmd_model_info, "parameter counts of a preset (no weights allocated)")
    p.add_argument("--preset", default="tiny", choices=PRESETS, help="model size preset")
    add_model_commands(add)
    return parser


def _one_line(err: BaseException) -> str:
    """The error as one line; an OSError as ``path: reason``."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, FileNotFoundError) and " " not in text:  # pyarrow: just the path
        text += ": no such file or directory"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print ``error: ...`` on one line and return 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        if os.environ.get("UNIXLIB_TRACEBACK"):  # debugging: the full traceback instead
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return USER_ERROR_STATUS


if __name__ == "__main__":
    sys.exit(main())
