"""``prepare``, ``clean``, ``label``: the data commands (notebook 01 step by step)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unixlib.cli.common import USER_ERROR_STATUS, AddCommand, add_fail_fast, batch_status, csv_list

# CLI flag -> source argument, per source (see each source module's ``candidates``).
PER_SOURCE = {
    "synth": {
        "n_train": "n_train",
        "n_validate": "n_validate",
        "n_test": "n_test",
        "seed": "seed",
    },
    "mimic": {
        "root": "root",
        "reports_root": "reports_root",
        "image_format": "image_format",
        "test_annotations": "test_annotations",
        "gen_annotations": "gen_annotations",
        "understanding_test": "understanding_test",
    },
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


def cmd_prepare(args: argparse.Namespace) -> int:
    from unixlib.data.sources.prepare import TooManyRejectsError, prepare

    mapping = PER_SOURCE[args.source]
    given = {
        flag
        for flag, value in vars(args).items()
        if value is not None and flag in {f for m in PER_SOURCE.values() for f in m}
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
            max_reject_frac=0.0 if args.fail_fast else args.max_reject_frac,
            **source_args,
        )
    except TooManyRejectsError as err:  # the data failed its checks (rejects.csv)
        first = _first_bad_row(Path(args.out)) if args.fail_fast else None
        print(f"error: prepare: {first}" if first else f"error: {err}", file=sys.stderr)
        return USER_ERROR_STATUS if first else 1
    n_bad = result.n_rejected - result.n_filtered  # excluded views are by design, not errors
    print(
        f"{result.n_rows} rows -> {result.manifest_path}; {result.n_rejected} not used -> "
        f"{result.rejects_path} ({result.n_filtered} excluded by design: non-frontal views; "
        f"{n_bad} rejected)"
    )
    return batch_status(n_bad, f"{result.rejects_path} (the rows whose stage is not 'view')")


def _first_bad_row(out: Path) -> str | None:
    """The first data-error row of ``out/rejects.csv`` as ``ref: reason`` (what --fail-fast
    names) and where the others are; None when there is none (no input rows at all)."""
    import pandas as pd

    from unixlib.data.sources.common import FILTER_STAGES

    path = out / "rejects.csv"
    rejects = pd.read_csv(path, dtype=str, keep_default_na=False)
    bad = rejects[~rejects["stage"].isin(FILTER_STAGES)]
    if bad.empty:
        return None
    first = bad.iloc[0]
    return f"{first['ref']}: {first['reason']} (--fail-fast; all {len(bad)} in {path})"


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


def add_commands(add: AddCommand) -> None:
    """prepare, clean, label."""
    p = add("prepare", cmd_prepare, "build DIR/manifest.parquet + image cache from a data source")
    p.add_argument("--source", required=True, choices=["synth", "mimic", "iuxray", "folder"])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--image-size", type=int, default=64, help="cached image side in pixels")
    p.add_argument(
        "--max-reject-frac",
        type=float,
        default=0.05,
        help="fail (status 1) above this share of rejected rows; below it the build finishes "
        "with status 3",
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
    p.add_argument(
        "--test-annotations", help="mimic: LLaVA-Rad test CSV (the generation test pairs)"
    )
    p.add_argument(
        "--gen-annotations", help="mimic: LLaVA-Rad training CSV (the generation training set)"
    )
    p.add_argument(
        "--understanding-test", help="mimic: the release's test_data.json (Table 2's pairs)"
    )
    add_fail_fast(p)
    p.epilog += (
        "; non-frontal views are excluded by design (stage 'view' in rejects.csv), not rejected, "
        "and leave the status 0. --fail-fast: any rejected row fails the build (status 2, one "
        "line naming the first), after every row was read"
    )

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
    p.add_argument("--text-cols", type=csv_list, required=True, help="e.g. findings,impression")
    p.add_argument("--out", required=True, help="output CSV")
