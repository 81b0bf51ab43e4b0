"""``evaluate``, ``compare`` and ``model-info``: a trained run's tables, two evaluations
paired over the same studies, a preset's size."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unixlib.cli.common import PRESETS, PROFILES, AddCommand, add_fail_fast, batch_status


def cmd_evaluate(args: argparse.Namespace) -> int:
    from unixlib import config
    from unixlib.experiments.evaluation import EvalSettings
    from unixlib.experiments.evaluation_outputs import evaluate_run

    overrides = [f"05_evaluate.{item}" for item in args.set or []]
    params = config.load(args.profile, overrides).for_notebook("05_evaluate")
    params.update(run_dir=args.run_dir, stage=args.stage)
    settings = EvalSettings.from_params(params)
    out = Path(args.out)
    summary = evaluate_run(settings, out, params.get("device", "auto"), args.fail_fast)
    print("\n".join(summary["verdicts"]))
    print(f"tables, figures and generated samples -> {out} ({summary['seconds']} s)")
    return batch_status(summary["rejected"], f"{out / 'rejects.csv'} (dropped from every table)")


def cmd_compare(args: argparse.Namespace) -> int:
    from unixlib.eval.uncertainty import Resampling
    from unixlib.experiments.compare import compare_runs
    from unixlib.viz.tables import save_table

    frame, sentences = compare_runs(
        Path(args.a), Path(args.b), args.run_dir, args.set_name, Resampling(args.n_resamples)
    )
    print("\n".join(sentences))
    if args.out:
        caption = f"{args.a} (A) vs {args.b} (B), paired over the same test studies"
        paths = save_table(frame, Path(args.out), "comparison", caption, ".4f")
        print(f"table -> {paths['md']}")
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from unixlib.model.config import preset
    from unixlib.model.unix import parameter_counts

    print(json.dumps(parameter_counts(preset(args.preset)), indent=2))
    return 0


def add_commands(add: AddCommand) -> None:
    """evaluate, compare, model-info."""
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
    add_fail_fast(p)
    p.epilog += (
        "; a test study whose image cannot be read is dropped from every table (the captions "
        "count the studies evaluated) and listed in rejects.csv in --out"
    )

    p = add("compare", cmd_compare, "paired comparison of two evaluations of the same test rows")
    p.add_argument("a", help="an evaluation folder (evaluate --out, or figures/PROFILE): A")
    p.add_argument("b", help="the other evaluation folder: B")
    p.add_argument(
        "--run-dir",
        help="the run whose reference encoders and real test images measure the images "
        "(without it, only the reports are compared)",
    )
    p.add_argument("--set-name", default="UniX_stage_3", help="the image set to compare")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--out", help="folder for comparison.csv / .md / .tex")

    p = add("model-info", cmd_model_info, "parameter counts of a preset (no weights allocated)")
    p.add_argument("--preset", default="tiny", choices=PRESETS, help="model size preset")
