"""``python -m unixlib reproduce --profile NAME --dry-run``: check a profile before any compute.

Every check runs, and every problem is listed at once, each with what to do:

* parameters: the profile against the notebooks (types, unknown keys) and each stage's
  ``TrainConfig`` (its own validation);
* paths: every external path the profile names exists (data, weights, tokenizer, annotations);
* weights: each weight directory loads **on the meta device** (shapes only, no data read): the
  Janus-Pro-1B checkpoint into the stage-1 model, the official UniX checkpoint (with its VAE)
  into the released model, an LDM VAE into the kl-f16 autoencoder; key coverage is reported;
* tokenizer: its special ids and size fit the embedding rows of the weights it will index;
* data: the MIMIC-CXR-JPG layout (the three CSVs, ``files/``), the test annotation CSV
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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _exists(path: str) -> bool:
    return config.project_path(path).exists()


def check_paths(profile: config.Profile) -> list[Check]:
    """Every non-empty external path parameter (and data source argument) exists."""
    out = []
    for nb, key, what, where in PATH_PARAMS:
        value = profile.params.get(nb, {}).get(key, "")
        if value:
            ok = _exists(value)
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
            ok = _exists(args[key])
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
    if p["source"] != "mimic" or not _exists(p["source_args"].get("root", "/nonexistent")):
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
    if ann and _exists(ann):
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
    if und and _exists(und):
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


def _meta_import(label: str, build: Any, importer: Any, path: str, fix: str) -> Check:
    """Build a model on the meta device and run a strict importer on it (no data read)."""
    import torch

    from unixlib.model.weights import WeightImportError

    try:
        with torch.device("meta"):
            model = build()
        report = importer(model, config.project_path(path))
    except (WeightImportError, FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
        first = str(err).splitlines()
        detail = "; ".join(line.strip() for line in first[:8]) + (" ..." if len(first) > 8 else "")
        return Check(label, False, detail, fix)
    n = len(model.state_dict())
    return Check(
        label,
        True,
        f"{len(report.loaded)} loaded + {len(report.initialised)} "
        f"initialised by rule of {n} model keys; shapes match (meta device)",
    )


def check_weights(profile: config.Profile) -> list[Check]:
    """Janus-Pro, the release and the VAE load on the meta device; tokenizer fits them."""
    from unixlib.model.config import preset

    out = []
    nb2 = profile.params["02_train_ar"]
    rows: dict[str, int] = {}
    janus, release = nb2.get("janus_dir", ""), nb2.get("release_dir", "")
    if janus and _exists(janus):
        from unixlib.model.weights import embedding_rows, import_janus_pro

        try:
            rows["Janus-Pro"] = embedding_rows(config.project_path(janus))
        except (ValueError, FileNotFoundError, RuntimeError) as err:
            out.append(Check("Janus-Pro embedding", False, str(err), "a complete Janus-Pro-1B"))
        else:
            size = {"image_size_und": nb2["image_size"], "vocab_size": rows["Janus-Pro"]}
            out.append(
                _meta_import(
                    "Janus-Pro -> stage-1 model",
                    lambda: _model(preset(nb2["preset"], **size)),
                    import_janus_pro,
                    janus,
                    "re-download Janus-Pro-1B (a key is missing or misshaped)",
                )
            )
    if release and _exists(release):
        from unixlib.model.weights import import_unix_release, load_foreign_state_dict

        try:
            state = load_foreign_state_dict(config.project_path(release), meta=True)
            rows["UniX release"] = int(state["language_model.model.embed_tokens.weight"].shape[0])
        except (KeyError, FileNotFoundError, ValueError, RuntimeError) as err:
            out.append(Check("UniX release embedding", False, str(err), "a complete release"))
        size = {
            "vocab_size": rows.get("UniX release", 102400),
            "image_size_gen": 512,
            "sequence_layout": "official",
        }
        out.append(
            _meta_import(
                "UniX release -> paper model (+ VAE)",
                lambda: _model(preset("paper", **size)),
                import_unix_release,
                release,
                "re-download the release; vae/ needs kl-f16d16.ckpt and its yaml",
            )
        )
    vae = profile.params["03_train_diffusion"].get("vae_dir", "")
    if vae and _exists(vae) and not release:
        out.append(check_ldm_vae(vae))
    out += check_tokenizer(profile, rows)
    return out


def _model(cfg: Any) -> Any:
    from unixlib.model.unix import UniX

    return UniX(cfg)


def check_ldm_vae(path: str) -> Check:
    """An LDM kl-f16 checkpoint (+ yaml) against the paper's autoencoder, on the meta device."""
    import torch

    from unixlib.model.config import KL_F16_VAE_CONFIG
    from unixlib.model.vae import build_autoencoder, convert_ldm_vae_state_dict
    from unixlib.model.weights import load_foreign_state_dict

    p = config.project_path(path)
    ckpt = p if p.is_file() else next(iter(sorted(p.glob("*.ckpt"))), p)
    yaml_file = ckpt.with_suffix(".yaml")
    if not yaml_file.is_file():
        return Check(
            "VAE",
            False,
            f"no {yaml_file.name} beside {ckpt}",
            "save latent-diffusion's models/first_stage_models/kl-f16/config.yaml there",
        )
    try:
        ours, _, unknown = convert_ldm_vae_state_dict(load_foreign_state_dict(ckpt, meta=True), 5)
    except (ValueError, RuntimeError) as err:
        return Check("VAE", False, str(err), "a kl-f16 LDM checkpoint")
    with torch.device("meta"):
        target = build_autoencoder(KL_F16_VAE_CONFIG).state_dict()
    missing = sorted(set(target) - set(ours))
    bad = [k for k in set(target) & set(ours) if tuple(target[k].shape) != tuple(ours[k].shape)]
    ok = not (missing or bad or unknown)
    detail = f"{len(ours)} keys; missing {missing[:3]}, misshaped {bad[:3]}, unknown {unknown[:3]}"
    return Check("VAE kl-f16 (meta device)", ok, detail, "the release's kl-f16d16.ckpt")


def check_tokenizer(profile: config.Profile, rows: dict[str, int]) -> list[Check]:
    """The tokenizer's special ids and size against every embedding it will index."""
    tok_dir = profile.params["01_clean_data"].get("tokenizer_dir", "")
    if not tok_dir or not _exists(tok_dir):
        return []
    from unixlib.data.text.tokenizer import JANUS_SPECIAL_IDS, ReportTokenizer

    try:
        tok = ReportTokenizer.load(config.project_path(tok_dir))
    except (FileNotFoundError, ValueError) as err:
        return [Check("tokenizer", False, str(err), "a directory with Janus-Pro's tokenizer.json")]
    out = [
        Check(
            "tokenizer special ids",
            tok.special_ids == JANUS_SPECIAL_IDS,
            f"{tok.special_ids}",
            "the paper profiles need Janus-Pro's (DeepSeek) tokenizer",
        )
    ]
    for name, n in rows.items():
        top = max(tok.special_ids.values())
        ok = tok.vocab_size <= n and top < n
        out.append(
            Check(
                f"tokenizer vs {name} embedding",
                ok,
                f"tokenizer needs {tok.vocab_size} rows (ids up to {top}); {n} rows",
                "use the tokenizer that belongs to these weights",
            )
        )
    return out


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
    from unixlib.experiments import dryrun_protocol as protocol  # imports Check from here

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
