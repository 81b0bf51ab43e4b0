"""The commands that use a trained model directory: describe, draw, export.

Part of the command line (``unixlib.cli.main`` adds them to its parser); the work is done in
``unixlib.experiments.inference`` and ``unixlib.experiments.export``, imported only when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unixlib.cli.common import AddCommand

DEVICES = ["auto", "cpu", "cuda", "mps"]


def cmd_describe(args: argparse.Namespace) -> int:
    from unixlib.experiments import inference

    model, tokenizer = inference.load_model_dir(Path(args.model), args.device)
    table = inference.describe(
        model, tokenizer, [Path(p) for p in args.images], args.max_new_tokens, args.batch_size
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"{len(table)} reports -> {args.out}")
    else:
        for row in table.itertuples():
            print(f"{row.image}\n  report: {row.report}\n  findings: {row.findings}")
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    from unixlib.experiments import inference

    reports = list(args.report or [])
    if args.reports_csv:
        reports += inference.read_reports(Path(args.reports_csv), args.column)
    if not reports:
        raise ValueError("draw: give --report TEXT (repeatable) or --reports-csv FILE")
    model, tokenizer = inference.load_model_dir(Path(args.model), args.device)
    table = inference.draw(
        model,
        tokenizer,
        reports,
        Path(args.out),
        steps=args.steps,
        cfg_scale=args.cfg_scale,
        seed=args.seed,
        size=args.size,
    )
    print(f"{len(table)} images -> {args.out} (index: {Path(args.out) / 'images.csv'})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from unixlib.experiments.export import export_run

    out = export_run(Path(args.run_dir), args.stage, Path(args.out), args.max_shard_size)
    print(f"model directory -> {out}")
    return 0


def add_commands(add: AddCommand) -> None:
    """describe, draw, export: using a trained model directory."""
    p = add("describe", cmd_describe, "write a report for each X-ray (PNG, JPEG or DICOM)")
    p.add_argument("--model", required=True, help="a model directory (a stage's final/)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or DICOM files")
    p.add_argument("--out", help="CSV of image, report, findings and 14 labels (default: print)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="report length limit")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    p.add_argument(
        "--device", default="auto", choices=DEVICES, help="auto: CUDA, else Apple MPS, else CPU"
    )

    p = add("draw", cmd_draw, "generate X-rays (8-bit PNG) from reports")
    p.add_argument("--model", required=True, help="a model directory (a stage's final/)")
    p.add_argument("--report", action="append", help="a report to draw (repeatable)")
    p.add_argument("--reports-csv", help="a CSV with one report per row (e.g. describe --out)")
    p.add_argument("--column", default="report", help="the --reports-csv column to read")
    p.add_argument("--out", required=True, help="output folder: NNN_<words>.png + images.csv")
    p.add_argument("--steps", type=int, help="Euler steps (default: the model config's)")
    p.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale (1 = none)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (device-independent)")
    p.add_argument("--size", type=int, help="image side in px (default: the trained size)")
    p.add_argument(
        "--device", default="auto", choices=DEVICES, help="auto: CUDA, else Apple MPS, else CPU"
    )

    p = add(
        "export", cmd_export, "make a model directory of a run's stage (tokenizer, card, metrics)"
    )
    p.add_argument(
        "--run-dir", required=True, help="a run of the series, e.g. papermill_runs/smoke"
    )
    p.add_argument("--stage", type=int, default=3, choices=[1, 2, 3], help="which stage's final/")
    p.add_argument("--out", required=True, help="the model directory to write")
    p.add_argument("--max-shard-size", default="5GB", help="split weights above this, e.g. 2GB")
