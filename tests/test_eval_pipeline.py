"""End to end: ``python -m unixlib evaluate`` on tiny random stage-2/3 models and a tiny split.

A random model writes nonsense and draws noise; the point is that every table is written with
finite numbers and its baseline rows, the generated samples are saved, and the numbers that a
random model must lose on (faithfulness, alignment of shuffled vs matched) behave accordingly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from train_helpers import tiny_config

from unixlib.cli.common import REJECTED_STATUS
from unixlib.cli.main import main
from unixlib.data import processed
from unixlib.data.datasets import load_image
from unixlib.data.sources.prepare import prepare
from unixlib.data.text.clean import clean_manifest
from unixlib.data.text.prompts import EVAL_PROMPT
from unixlib.experiments import evaluation as pipeline
from unixlib.experiments import evaluation_outputs as outputs
from unixlib.model.saving import save_pretrained
from unixlib.model.unix import UniX
from unixlib.train.setup import build_model
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN

# notebook 05's parameters for a 32 px run of random models: a few steps of everything (the
# image sizes come from the checkpoints, the sampler too but for its overridden step count)
TINY = [
    f"--set={kv}"
    for kv in (
        "encoder_image_size=32",
        "encoder_steps=3",
        "sampler={sample_steps: 3}",
        "max_new_tokens=8",
        "max_report_tokens=40",
        "n_resamples=50",
        "batch_size=14",
    )
]
TABLES = (
    "table2_understanding",
    "table2_comparisons",
    "table_nlg",
    "table3_generation",
    "table3_real_reference",
    "table3_comparisons",
    "table4_per_pathology",
    "table_generation_faithfulness",
    "table_reference_encoders",
)


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder: SynthCXR 64/28/28 at 32 px, cleaned, labelled, a BPE; random tiny models
    saved as ``stage2/final`` and ``stage3/final``."""
    run = tmp_path_factory.mktemp("eval_run")
    paths = processed.DataPaths.of_run(run)
    prepare("synth", paths.root, image_size=32, n_train=64, n_validate=28, n_test=28, seed=1)
    clean_manifest(paths.manifest, paths.manifest_clean)
    data = processed.fill_labels(pd.read_parquet(paths.manifest_clean))
    tokenizer = processed.build_tokenizer(data, paths.tokenizer, vocab_size=300)
    data.to_parquet(paths.processed)
    for stage in (2, 3):
        cfg = tiny_config(run, run / f"stage{stage}", stage=stage, init_from="", vae_dir="")
        save_pretrained(build_model(cfg, tokenizer), run / f"stage{stage}" / "final")
    return run


def test_evaluate_command_writes_every_table_with_baselines(eval_run: Path, tmp_path: Path):
    out = tmp_path / "figures"
    assert main(["evaluate", "--run-dir", str(eval_run), "--out", str(out), *TINY]) == 0
    for stem in TABLES:
        for ext in ("csv", "md", "tex"):
            assert (out / f"{stem}.{ext}").is_file(), f"{stem}.{ext} missing"
    for png in (
        "fig1_summary",
        "fig1_qualitative",
        "per_class_f1",
        "per_pathology_fd",
        "generated_images",
    ):
        assert (out / f"{png}.png").stat().st_size > 1000

    t2 = pd.read_csv(out / "table2_understanding.csv")
    ours = t2[t2[SOURCE_COL] == THIS_RUN]
    assert set(ours["kind"]) == {"model", "baseline"} and len(ours) == 4
    f1_cols = [c for c in t2.columns if "(u=" in c]
    assert np.isfinite(ours[f1_cols].to_numpy(float)).all()
    assert (t2[SOURCE_COL] == FROM_PAPER).any()

    t3 = pd.read_csv(out / "table3_generation.csv")
    ours = t3[t3[SOURCE_COL] == THIS_RUN]
    expected = {"UniX stage 2", "UniX stage 3", "shuffled reports", "unconditional", "real (test)"}
    assert set(ours["images"]) == expected
    ceiling = ours[ours["images"] == "real (test)"]
    assert len(ceiling) == 1 and np.isfinite(ceiling["align"]).all()  # the alignment ceiling
    ours = ours[ours["images"] != "real (test)"]
    assert np.isfinite(ours[["FD", "KD", "precision", "recall", "density", "coverage"]]).all().all()
    assert set(ours["protocol"]) == {"whole test set", "mean of 4 shards"}
    whole = ours[ours["protocol"] == "whole test set"]
    for col in ("FD", "KD", "align", "precision"):  # every whole-set number has its interval
        low, high = whole[f"{col}_low"], whole[f"{col}_high"]
        assert np.isfinite(low).all() and (low <= high).all(), col
    md = (out / "table3_generation.md").read_text()
    assert " [" in md and "The paper (quoted" in md  # intervals shown; quoted rows apart
    assert md.index("The paper (quoted") > md.index("UniX stage 3")
    t2md = (out / "table2_understanding.md").read_text()
    assert "The paper (quoted" in t2md and t2md.index("LLaVA-Rad") > t2md.index("The paper")
    comparisons = pd.read_csv(out / "table2_comparisons.csv")
    assert {"p_value", "diff_low", "diff_high"} <= set(comparisons.columns)
    assert set(comparisons["baseline"]) == {
        "most frequent report",
        "random report",
        "retrieval (nearest image)",
    }
    ref = pd.read_csv(out / "table3_real_reference.csv")
    assert "real vs real" in set(ref["images"]) and (ref["FD_min"] <= ref["FD_max"]).all()

    reports = pd.read_csv(out / "generated_reports.csv", keep_default_na=False)
    assert len(reports) == 28 and "UniX (this run)" in reports.columns
    assert (reports["prompt"] == EVAL_PROMPT).all()  # no understanding set: one prompt for all
    images = np.load(out / "generated_images.npz")
    assert images["UniX_stage_3"].shape == (28, 32, 32) and images["UniX_stage_3"].dtype == np.uint8
    assert len(images["ids"]) == 28

    summary = json.loads((out / "evaluation_summary.json").read_text())
    assert summary["verdicts"] and all(
        ("beats" in v) or ("worse" in v) or ("no detectable difference" in v)
        for v in summary["verdicts"]
    )
    head = summary["understanding"]["micro14 (u=pos)"]
    assert head["low"] <= head["value"] <= head["high"]
    # the faithfulness headline is over every class the classifier judges, with its interval;
    # the 5 large findings are a labelled subset beside it (issue 22.14)
    assert "faithfulness_all_classes" in summary and "faithfulness_5_classes" in summary
    assert len(summary["faithfulness_all_classes_interval"]) == 2
    faith = pd.read_csv(out / "table_generation_faithfulness.csv")
    assert {"auroc_generated", "auroc_real", "auroc_shuffled"} <= set(faith.columns)


def test_evaluate_command_reports_user_errors_in_one_line(tmp_path: Path, capsys):
    assert main(["evaluate", "--run-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "run notebook 01" in capsys.readouterr().err
    argv = ["evaluate", "--run-dir", str(tmp_path), "--out", str(tmp_path), "--set", "nope=1"]
    assert main(argv) == 2
    assert "nope" in capsys.readouterr().err


def test_guidance_is_the_identity_without_a_report(eval_run: Path):
    """Why the unconditional set is sampled with scale 1: the same images at half the cost."""
    model = UniX.from_pretrained(eval_run / "stage3" / "final").eval()
    a = model.generate_image([[], []], size=32, steps=3, cfg_scale=4.0, seed=5)
    b = model.generate_image([[], []], size=32, steps=3, cfg_scale=1.0, seed=5)
    assert torch.allclose(a, b, atol=1e-6)


def test_a_prepared_understanding_test_set_becomes_table2s_rows(eval_run: Path, tmp_path: Path):
    """With ``data/understanding_test.parquet`` (the release's test_data.json, written by
    notebook 01) Table 2's rows, their images and ``generated_reports.csv`` follow that set,
    while the generation rows stay the test split; Fig. 1 pairs the images both sets share."""
    run = tmp_path / "run"
    shutil.copytree(eval_run / "data", run / "data")
    data = pd.read_parquet(run / "data" / "processed.parquet")
    test, train = data[data["split"] == "test"], data[data["split"] == "train"]
    picked = pd.concat([test.iloc[[5, 2]], train.iloc[[0]]])  # a train image: not a test row
    und = pd.DataFrame(
        {
            "id": picked["id"].tolist(),
            "image_path": picked["image_path"].tolist(),
            "prompt": ["Describe the FINDINGS.", "Give the IMPRESSION.", "Describe the FINDINGS."],
            "reference": ["FINDINGS: a.", "FINDINGS: b.", "FINDINGS: c."],
        }
    )
    und.to_parquet(processed.DataPaths.of_run(run).understanding_test)
    inputs = pipeline.load_inputs(pipeline.EvalSettings(run_dir=str(run)))
    assert len(inputs.test) == 28 and inputs.references == inputs.test["report_clean"].tolist()
    pd.testing.assert_frame_equal(inputs.und, und)
    assert inputs.und_set == "the paper's understanding test set (test_data.json, 3 pairs)"
    images = inputs.und_images(32)
    assert images.shape == (3, 1, 32, 32)
    assert torch.equal(images[2], load_image(run / "data" / picked["image_path"].iloc[2], 32))
    rows = {i: k for k, i in enumerate(inputs.test["id"])}
    assert outputs.qualitative_cases(inputs, 4) == sorted(
        [(0, rows[picked["id"].iloc[0]]), (1, rows[picked["id"].iloc[1]])], key=lambda c: c[1]
    )
    methods = {"UniX (this run)": ["w0", "w1", "w2"]}
    outputs.save_generated(tmp_path / "o", inputs, methods, {"s": np.zeros((28, 32, 32))})
    reports = pd.read_csv(tmp_path / "o" / "generated_reports.csv")
    assert reports["id"].tolist() == und["id"].tolist()
    assert reports["prompt"].tolist() == und["prompt"].tolist()
    assert reports["reference"].tolist() == und["reference"].tolist()
    assert len(np.load(tmp_path / "o" / "generated_images.npz")["ids"]) == 28


def test_an_unreadable_test_image_drops_its_study_from_every_table(
    eval_run: Path, tmp_path: Path, capsys
):
    """A cached test image cut short: the evaluation goes on without that study (every table,
    the samples and the captions' counts), lists it in rejects.csv and exits with status 3;
    --fail-fast stops at it with the reader's one-line error (status 2)."""
    run = tmp_path / "run"
    shutil.copytree(eval_run, run, ignore=shutil.ignore_patterns("eval"))
    data = pd.read_parquet(run / "data" / "processed.parquet")
    bad = data[data["split"] == "test"].iloc[3]
    image = run / "data" / bad["image_path"]
    image.write_bytes(image.read_bytes()[:70])
    out = tmp_path / "figures"
    argv = ["evaluate", "--run-dir", str(run), "--out", str(out), *TINY]
    argv.append("--set=n_shards=3")  # 27 studies: PRDC's k = 5 needs 7 per shard
    assert main(argv) == REJECTED_STATUS
    err = capsys.readouterr().err
    assert err.strip().endswith(
        f"1 input was rejected: see {out / 'rejects.csv'} (dropped from every table)"
    )
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    assert rejects[["id", "ref", "stage"]].values.tolist() == [[bad["id"], str(image), "image"]]
    assert rejects["reason"][0].startswith("unreadable image (")
    ids = np.load(out / "generated_images.npz")["ids"]
    test_ids = data.loc[data["split"] == "test", "id"]
    assert ids.tolist() == [i for i in test_ids if i != bad["id"]]
    reports = pd.read_csv(out / "generated_reports.csv", keep_default_na=False)
    # (a random model's report may hold a bare "\r", which splits its CSV row: compare ids)
    assert set(ids) <= set(reports["id"]) and bad["id"] not in set(reports["id"])
    assert "the test split (27 studies)" in (out / "table2_understanding.md").read_text()
    assert "; 27 test studies, features of" in (out / "table3_generation.md").read_text()
    assert "27 test studies" in (out / "table4_per_pathology.md").read_text()

    assert main([*argv, "--fail-fast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read cached image {image}: ") and err.count("\n") == 1
