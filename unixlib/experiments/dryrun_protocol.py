"""The dry run's checks of the evaluation protocol (``reproduce --dry-run``; :mod:`.dryrun`).

* test files: the generation test pairs (the LLaVA-Rad test CSV), the understanding test pairs
  (the release's ``test_data.json``, checked in :mod:`.dryrun_paths`) and the generation training set
  (the LLaVA-Rad training CSV): which file, how many pairs, every image present;
* cleaning: ``llm_cleaning: on`` (the paper's LLM cleaning) needs an endpoint and its key in
  the environment; ``off`` is said (the tables then say "rule-cleaned");
* evaluators of notebooks 05 and 06: which labeler, RadGraph, image encoder and alignment model
  each uses, its weights path and its input resolution, each loaded on the meta device or read
  without running (the ``check_*`` functions of :mod:`unixlib.eval`); and the resolution at
  which real and generated images meet the image encoder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from unixlib import config
from unixlib.experiments.dryrun_paths import Check

EVAL_NOTEBOOKS = ("05_evaluate", "06_ablations")


def _path(value: str) -> Path:
    return config.project_path(value)


def check_annotation_files(profile: config.Profile) -> list[Check]:
    """The LLaVA-Rad training CSV (the generation training set): pairs, no test image, every
    image under the MIMIC root (the test CSV and test_data.json are checked by dryrun)."""
    p = profile.params["01_clean_data"]
    args = p.get("source_args", {})
    gen = args.get("gen_annotations")
    if p["source"] != "mimic" or not gen or not _path(gen).is_file():
        return []
    import pandas as pd

    from unixlib.data.sources.mimic import read_test_annotations

    root = _path(args.get("root", "/nonexistent"))
    try:
        prompts = read_test_annotations(_path(gen))
        paths = pd.read_csv(_path(gen), dtype=str)["path"]
    except (ValueError, KeyError) as err:
        return [Check("generation training set", False, str(err), _GEN_FIX)]
    absent = [x for x in paths if not (root / x).is_file()]
    detail = (
        f"{gen}: {len(prompts)} image-prompt pairs (the paper: 237,387); "
        f"{len(absent)} images absent under {root}" + (f", e.g. {absent[:2]}" if absent else "")
    )
    return [Check("generation training set", not absent, detail, "download the missing images")]


_GEN_FIX = (
    "CheXGenBench's MIMIC_Splits/LLAVARAD_ANNOTATIONS_TRAIN.csv (columns path, annotated_prompt)"
)


def test_files(profile: config.Profile) -> list[Check]:
    """One line per test set the tables are computed on (what, which file, how many pairs);
    a file that is named but missing is reported by ``check_paths``."""
    args = profile.params["01_clean_data"].get("source_args", {})
    out = []
    test = args.get("test_annotations")
    if test and _path(test).is_file():
        import pandas as pd

        n = len(pd.read_csv(_path(test), dtype=str))
        out.append(Check("test set, Tables 3-4", True, f"{test}: {n} report-image pairs"))
    elif profile.params["01_clean_data"]["source"] == "mimic":
        out.append(Check("test set, Tables 3-4", True, "the official test split (no test CSV)"))
    und = args.get("understanding_test")
    if und and _path(und).is_file():  # a missing file is already a failure (check_paths)
        out.append(Check("test set, Table 2", True, f"{und} (the release's test_data.json)"))
    elif profile.params["01_clean_data"]["source"] == "mimic":
        out.append(Check("test set, Table 2", True, "the test split above (no test_data.json)"))
    return out


def check_cleaning(profile: config.Profile) -> list[Check]:
    """``llm_cleaning``: on needs an endpoint and a key; off and auto say what will happen."""
    p = profile.params["01_clean_data"]
    mode, url, model = p.get("llm_cleaning", "auto"), p.get("llm_base_url"), p.get("llm_model")
    key = p.get("llm_api_key_env", "UNIX_LLM_API_KEY")
    fix = (
        "set 01_clean_data.llm_base_url and llm_model (key in $" + key + "), or "
        "--set 01_clean_data.llm_cleaning=off for rule cleaning (the tables then say rule-cleaned)"
    )
    if mode == "on" and not (url and model):
        return [Check("LLM cleaning", False, "llm_cleaning is on but no endpoint is set", fix)]
    if mode == "on" and not os.environ.get(key):
        return [Check("LLM cleaning", False, f"{model} at {url}, but ${key} is empty", fix)]
    if mode == "off" or not (url and model):
        return [Check("LLM cleaning", True, "off: rules only; every table says rule-cleaned")]
    return [Check("LLM cleaning", True, f"{model} at {url} (key in ${key}), self-judged")]


def _one(item: str, run: Callable[[], str], fix: str) -> Check:
    """A check function's description line, or its error as a failure."""
    try:
        return Check(item, True, run())
    except (FileNotFoundError, ValueError, KeyError, OSError) as err:
        return Check(item, False, str(err).splitlines()[0], fix)


def check_evaluators(profile: config.Profile) -> list[Check]:
    """Each evaluator notebooks 05 and 06 will use: which one, its weights, its resolution."""
    out = []
    for nb in EVAL_NOTEBOOKS:
        out += _evaluators_of(profile, nb)
    return out


def _evaluators_of(profile: config.Profile, nb: str) -> list[Check]:
    from unixlib.eval import biovil, chexbert, radgraph

    p = profile.params[nb]
    out = []
    if p.get("chexbert_checkpoint"):
        ckpt, bert = _path(p["chexbert_checkpoint"]), _path(p.get("chexbert_bert_dir") or ".")
        run = partial(chexbert.check_chexbert, ckpt, bert)
        out.append(_one(f"{nb} labeler", run, _FIX["chexbert"]))
    else:
        out.append(Check(f"{nb} labeler", True, "the project's rule labeler (no CheXbert set)"))
    if p.get("radgraph_model"):
        model, bert = _path(p["radgraph_model"]), _path(p.get("radgraph_bert_dir") or ".")
        run = partial(radgraph.check_radgraph, model, bert)
        out.append(_one(f"{nb} RadGraph F1", run, _FIX["radgraph"]))
    elif "radgraph_model" in p:
        out.append(Check(f"{nb} RadGraph F1", True, "not configured: the NLG table says n/a"))
    if p.get("raddino_dir"):
        resize = int(p.get("raddino_resize", 299)) or None
        run = partial(_raddino, _path(p["raddino_dir"]), resize, p, profile)
        out.append(_one(f"{nb} image features", run, _FIX["raddino"]))
        out += _real_size(nb, p, profile)
    else:
        side = p.get("encoder_image_size")
        line = f"reference CNN trained on the train split, every image resized to {side} px"
        out.append(Check(f"{nb} image features", True, line))
    if p.get("biovil_dir"):
        path = _path(p["biovil_dir"])
        out.append(_one(f"{nb} alignment", partial(biovil.check_biovil, path), _FIX["biovil"]))
    elif nb == "05_evaluate":
        out.append(
            Check(f"{nb} alignment", True, "reference contrastive model (ours; no BioViL-T)")
        )
    if nb == "05_evaluate":
        out.append(_decoding(p))
    return out


def _sizes(p: dict, profile: config.Profile) -> tuple[int, int]:
    """(real, generated) px at which images reach the image encoder: the generated size is
    the stage-3 resolution (notebook 04), or notebook 06's ``image_size``; real images are read
    at it unless ``real_image_size`` says otherwise (``evaluators.feature_image_size``)."""
    generated = int(p.get("image_size") or profile.params["04_joint_stage"]["image_size"])
    return int(p.get("real_image_size") or generated), generated


def _raddino(path: Path, resize: int | None, p: dict, profile: config.Profile) -> str:
    """check_raddino's line, and where real and generated images meet the encoder."""
    from unixlib.eval.encoder_pretrained import check_raddino

    real, generated = _sizes(p, profile)
    return check_raddino(path, resize) + f"; real images read at {real} px, generated {generated}"


def _real_size(nb: str, p: dict, profile: config.Profile) -> list[Check]:
    """Real images read smaller than the generated ones pass a bottleneck the generated ones
    do not: a protocol error."""
    real, generated = _sizes(p, profile)
    if real >= generated:
        return []
    detail = f"real images read at {real} px, generated ones arrive at {generated} px"
    fix = f"--set {nb}.real_image_size=0 (the generated size)"
    return [Check(f"{nb} real image size", False, detail, fix)]


def _decoding(p: dict) -> Check:
    """How notebook 05 decodes and samples (the release: 499 new tokens, whole prompts, bf16)."""
    cut = p.get("max_report_tokens") or "none"
    detail = (
        f"greedy reports of at most {p.get('max_new_tokens')} new tokens; generation prompts cut "
        f"at {cut} ids; Table 2 images: {p.get('und_preprocess', 'cache')}; sampling in "
        f"{p.get('sample_dtype', 'bf16')}; generated images scored {p.get('generated_pixels')}"
    )
    return Check("05_evaluate decoding", True, detail)


_FIX = {
    "chexbert": "chexbert.pth from stanfordmlgroup/CheXbert and a local bert-base-uncased folder",
    "radgraph": "radgraph.tar.gz (StanfordAIMI/RRG_scorers) or its folder, and the BERT it names",
    "raddino": "a local copy of huggingface.co/microsoft/rad-dino with preprocessor_config.json",
    "biovil": "a local copy of huggingface.co/microsoft/BiomedVLP-BioViL-T (with its image .pt)",
}
