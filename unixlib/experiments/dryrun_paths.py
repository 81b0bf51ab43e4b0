"""The dry run's checks of paths and data (:mod:`.dryrun`), and its unit, :class:`Check`.

Every external path a profile names exists; for ``source: mimic`` the MIMIC-CXR-JPG layout, the
test annotation CSV and the release's understanding test set are well formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unixlib import config


@dataclass
class Check:
    """One checked item: ``ok``, what was found (``detail``) and, if not ok, what to do."""

    item: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"[{mark}] {self.item}: {self.detail}"
        return text + (f"\n       -> {self.fix}" if not self.ok and self.fix else "")


# (notebook, parameter, what it is, where it comes from) of every external path a profile names.
PATH_PARAMS: tuple[tuple[str, str, str, str], ...] = (
    (
        "01_clean_data",
        "tokenizer_dir",
        "tokenizer directory (tokenizer.json)",
        "the Janus-Pro-1B directory (huggingface.co/deepseek-ai/Janus-Pro-1B)",
    ),
    (
        "02_train_ar",
        "janus_dir",
        "Janus-Pro-1B weights",
        "download huggingface.co/deepseek-ai/Janus-Pro-1B",
    ),
    (
        "02_train_ar",
        "release_dir",
        "official UniX weights",
        "download the UniX release (github.com/ZrH42/UniX, its weights link)",
    ),
    (
        "03_train_diffusion",
        "vae_dir",
        "kl-f16 VAE checkpoint (+ yaml beside it)",
        "the release's vae/kl-f16d16.ckpt with latent-diffusion's kl-f16 config.yaml as kl-f16d16.yaml",
    ),
    (
        "03_train_diffusion",
        "repa_encoder",
        "RadDino (REPA target)",
        "download huggingface.co/microsoft/rad-dino",
    ),
    (
        "05_evaluate",
        "raddino_dir",
        "RadDino (FD/KD/PRDC features)",
        "download huggingface.co/microsoft/rad-dino",
    ),
    (
        "05_evaluate",
        "chexbert_checkpoint",
        "CheXbert checkpoint",
        "chexbert.pth from the CheXbert authors (stanfordmlgroup/CheXbert)",
    ),
    (
        "05_evaluate",
        "chexbert_bert_dir",
        "bert-base-uncased directory",
        "download huggingface.co/bert-base-uncased",
    ),
    (
        "05_evaluate",
        "radgraph_model",
        "RadGraph model (radgraph.tar.gz or its folder)",
        "radgraph.tar.gz from huggingface.co/StanfordAIMI/RRG_scorers",
    ),
    (
        "05_evaluate",
        "radgraph_bert_dir",
        "the BERT folder RadGraph's config names",
        "download the BERT named in radgraph's config.json (its config and tokenizer)",
    ),
    (
        "05_evaluate",
        "biovil_dir",
        "BioViL-T (alignment)",
        "download huggingface.co/microsoft/BiomedVLP-BioViL-T",
    ),
    (
        "06_ablations",
        "raddino_dir",
        "RadDino (FD/KD features of the ablations)",
        "download huggingface.co/microsoft/rad-dino",
    ),
    (
        "06_ablations",
        "chexbert_checkpoint",
        "CheXbert checkpoint (ablation F1)",
        "chexbert.pth from the CheXbert authors (stanfordmlgroup/CheXbert)",
    ),
)
SOURCE_PATHS = (
    "root",
    "csv",
    "reports_root",
    "csv_root",
    "test_annotations",
    "gen_annotations",
    "understanding_test",
    "images",
)
UNDERSTANDING_TEST_FIX = (
    "the paper's understanding test set (Table 2): eval/data/understanding/test_data.json of "
    "the official repository (github.com/ZrH42/UniX)"
)
MIMIC_CSVS = (
    "mimic-cxr-2.0.0-metadata.csv",
    "mimic-cxr-2.0.0-split.csv",
    "mimic-cxr-2.0.0-chexpert.csv",
)


def path_exists(path: str) -> bool:
    """Whether ``path`` (repository-relative or absolute) exists."""
    return config.project_path(path).exists()


def check_paths(profile: config.Profile) -> list[Check]:
    """Every non-empty external path parameter (and data source argument) exists."""
    out = []
    for nb, key, what, where in PATH_PARAMS:
        value = profile.params.get(nb, {}).get(key, "")
        if value:
            ok = path_exists(value)
            out.append(
                Check(
                    f"{nb}.{key}",
                    ok,
                    f"{what} at {value}" + ("" if ok else " missing"),
                    f"{where}; put it at {value} or --set {nb}.{key}=PATH",
                )
            )
    args = profile.params["01_clean_data"].get("source_args", {})
    for key in SOURCE_PATHS:
        if args.get(key):
            ok = path_exists(args[key])
            fix = (
                "your own credentialed copy (physionet.org/content/mimic-cxr-jpg; the test "
                "annotations from CheXGenBench's MIMIC_Splits)"
                if profile.params["01_clean_data"]["source"] == "mimic"
                else "the dataset"
            )
            fix = UNDERSTANDING_TEST_FIX if key == "understanding_test" else fix
            out.append(
                Check(
                    f"01_clean_data.source_args.{key}",
                    ok,
                    f"{args[key]}" + ("" if ok else " missing"),
                    f"{fix}; put it at {args[key]} or --set the path",
                )
            )
    return out


def check_mimic(profile: config.Profile) -> list[Check]:
    """The MIMIC-CXR-JPG layout, the test annotation CSV and the understanding test set (only
    for ``source: mimic``)."""
    p = profile.params["01_clean_data"]
    if p["source"] != "mimic" or not path_exists(p["source_args"].get("root", "/nonexistent")):
        return []
    import pandas as pd

    from unixlib.data.sources.mimic import read_test_annotations

    args = p["source_args"]
    root = config.project_path(args["root"])
    csv_root = config.project_path(args.get("csv_root") or args["root"])
    out = []
    for name in MIMIC_CSVS:
        found = (csv_root / name).is_file() or (csv_root / f"{name}.gz").is_file()
        out.append(
            Check(
                f"MIMIC {name}",
                found,
                str(csv_root / name),
                "from mimic-cxr-jpg 2.0/2.1 on PhysioNet (credentialed access)",
            )
        )
    out.append(
        Check(
            "MIMIC files/",
            (root / "files").is_dir(),
            str(root / "files"),
            "the image tree files/pXX/pXXXXXXXX/sXXXXXXXX/*.jpg",
        )
    )
    ann = args.get("test_annotations")
    if ann and path_exists(ann):
        try:
            frame = pd.read_csv(config.project_path(ann), dtype=str)
            read_test_annotations(config.project_path(ann))
            absent = [x for x in frame["path"] if not (root / x).is_file()]
            out.append(
                Check(
                    "test annotations",
                    not absent,
                    f"{len(frame)} rows; {len(absent)} images absent under {root}"
                    + (f", e.g. {absent[:2]}" if absent else ""),
                    "download the missing MIMIC-CXR-JPG images",
                )
            )
        except (ValueError, KeyError) as err:
            out.append(
                Check(
                    "test annotations",
                    False,
                    str(err),
                    "use CheXGenBench's MIMIC_Splits/LLAVARAD_ANNOTATIONS_TEST.csv",
                )
            )
    und = args.get("understanding_test")
    if und and path_exists(und):
        out.append(check_understanding_test(config.project_path(und), root))
    return out


def check_understanding_test(path: Path, root: Path) -> Check:
    """The release's ``test_data.json`` parses and every image it names is under ``root``."""
    from unixlib.data.sources.understanding_test import (
        UnderstandingTestError,
        read_understanding_test,
    )

    try:
        rows = read_understanding_test(path, root)
    except UnderstandingTestError as err:
        return Check("understanding test set", False, str(err), UNDERSTANDING_TEST_FIX)
    detail = (
        f"{len(rows)} image-report pairs, {rows['prompt'].nunique()} distinct prompts, "
        f"every image under {root} (Table 2 is computed on them)"
    )
    return Check("understanding test set", True, detail)
