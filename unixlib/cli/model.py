"""The commands that use a trained model directory: describe, draw, export.

Part of the command line (``unixlib.cli.main`` adds them to its parser); the work is done in
``unixlib.experiments.inference`` and ``unixlib.experiments.export``, imported only when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unixlib.cli.common import AddCommand, add_fail_fast, batch_status

DEVICES = ["auto", "cpu", "cuda", "mps"]


def cmd_describe(args: argparse.Namespace) -> int:
    from unixlib.experiments import inference
    from unixlib.experiments.rejects import Rejects

    model, tokenizer = inference.load_model_dir(Path(args.model), args.device)
    rejects = Rejects(fail_fast=args.fail_fast)
    table = inference.describe(
        model,
        tokenizer,
        [Path(p) for p in args.images],
        args.max_new_tokens,
        args.batch_size,
        rejects,
    )
    if not args.out:  # to the terminal: the rejected images too, one line each on stderr
        for row in table.itertuples():
            print(f"{row.image}\n  report: {row.report}\n  findings: {row.findings}")
        rejects.echo()
        return batch_status(len(rejects), "the lines above")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    where = rejects.write(out.parent)
    print(f"{len(table)} reports -> {out}; {len(rejects)} images rejected -> {where}")
    return batch_status(len(rejects), str(where))


def cmd_draw(args: argparse.Namespace) -> int:
    from unixlib.experiments import inference
    from unixlib.experiments.rejects import Rejects
    from unixlib.experiments.report_inputs import collect_reports

    csv = Path(args.reports_csv) if args.reports_csv else None
    reports = collect_reports(args.report or [], csv, args.column)
    if not reports:
        raise ValueError("draw: give --report TEXT (repeatable) or --reports-csv FILE")
    model, tokenizer = inference.load_model_dir(Path(args.model), args.device)
    rejects = Rejects(fail_fast=args.fail_fast)
    out = Path(args.out)
    table = inference.draw(
        model,
        tokenizer,
        reports,
        out,
        steps=args.steps,
        cfg_scale=args.cfg_scale,
        seed=args.seed,
        size=args.size,
        max_report_tokens=args.max_report_tokens,
        rejects=rejects,
    )
    limit = args.max_report_tokens or inference.MAX_REPORT_TOKENS
    for row in table[table["truncated"]].itertuples():
        print(
            f"warning: {row.ref}: a report of {row.tokens} tokens, drawn from its first "
            f"{limit} (--max-report-tokens)",
            file=sys.stderr,
        )
    where = rejects.write(out)
    print(
        f"{len(table)} images -> {out} (index: {out / 'images.csv'}); "
        f"{len(rejects)} reports rejected -> {where}"
    )
    return batch_status(len(rejects), str(where))


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
    p.add_argument(
        "--out",
        help="CSV of image, report, findings and 14 labels, rejects.csv beside it "
        "(default: print, the rejected images on stderr)",
    )
    p.add_argument("--max-new-tokens", type=int, default=128, help="report length limit")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    p.add_argument(
        "--device", default="auto", choices=DEVICES, help="auto: CUDA, else Apple MPS, else CPU"
    )
    add_fail_fast(p)

    p = add("draw", cmd_draw, "generate X-rays (8-bit PNG) from reports")
    p.add_argument("--model", required=True, help="a model directory (a stage's final/)")
    p.add_argument("--report", action="append", help="a report to draw (repeatable)")
    p.add_argument("--reports-csv", help="a CSV with one report per row (e.g. describe --out)")
    p.add_argument("--column", default="report", help="the --reports-csv column to read")
    p.add_argument(
        "--out", required=True, help="output folder: NNN_<words>.png, images.csv, rejects.csv"
    )
    p.add_argument("--steps", type=int, help="Euler steps (default: the model config's)")
    p.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale (1 = none)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (device-independent)")
    p.add_argument("--size", type=int, help="image side in px (default: the trained size)")
    p.add_argument(
        "--max-report-tokens",
        type=int,
        help="a longer report is drawn from its first this many tokens, with a warning "
        "(default: the training default, 256; the paper profile trained on 512)",
    )
    p.add_argument(
        "--device", default="auto", choices=DEVICES, help="auto: CUDA, else Apple MPS, else CPU"
    )
    add_fail_fast(p)

    p = add(
        "export", cmd_export, "make a model directory of a run's stage (tokenizer, card, metrics)"
    )
    p.add_argument(
        "--run-dir", required=True, help="a run of the series, e.g. papermill_runs/smoke"
    )
    p.add_argument("--stage", type=int, default=3, choices=[1, 2, 3], help="which stage's final/")
    p.add_argument("--out", required=True, help="the model directory to write")
    p.add_argument("--max-shard-size", default="5GB", help="split weights above this, e.g. 2GB")
