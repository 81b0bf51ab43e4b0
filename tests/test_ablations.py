"""Notebook 06's pieces: the arms as stage flags, the aggregation and the verdict logic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from unixlib.eval.uncertainty import Resampling
from unixlib.eval.understanding import _micro_macro
from unixlib.experiments.ablations import summary
from unixlib.experiments.ablations.measure import StudyData, parameter_summary, und_fingerprint
from unixlib.experiments.ablations.runner import as_int_seeds
from unixlib.experiments.ablations.variants import (
    CLEANING_REPORT_TOKENS,
    all_variants,
    run_config,
    runs,
    select,
)
from unixlib.model.config import preset
from unixlib.model.unix import UniX

RECIPES = {
    1: {"steps": 5, "lr": 1e-3, "warmup_steps": 0, "image_size": 64},
    2: {
        "steps": 7,
        "lr": 1e-3,
        "warmup_steps": 0,
        "image_size": 64,
        "repa_weight": 0.5,
        "timestep_shift": 3.0,
    },
    3: {"steps": 7, "lr": 1e-3, "warmup_steps": 0, "image_size": 64, "timestep_shift": 3.0},
}


@pytest.fixture
def run_root(tmp_path, monkeypatch):
    """A run root with the main series' start checkpoints (empty folders suffice here)."""
    for start in ("stage1/final", "stage1/vision_pretrained", "stage2/final"):
        (tmp_path / start).mkdir(parents=True)
    return str(tmp_path)


def test_table5_arms_keep_the_generation_examples_per_step(run_root):
    arms = select(["table5"])
    assert [v.label for v in arms] == [
        "gen only (und frozen) 0:1",
        "und + gen 1:1",
        "und + gen 1:2",
        "und + gen 1:4",
        "und + gen 0:1",
    ]
    cfgs = [run_config(v, RECIPES[v.stage], run_root, 0, 16) for v in arms]
    assert [c.batch_size for c in cfgs] == [16, 32, 24, 20, 16]
    assert [c.task_ratio for c in cfgs] == [(0, 1), (1, 1), (1, 2), (1, 4), (0, 1)]
    assert cfgs[0].trainable == ("gen",)
    assert all(c.trainable == ("vision", "connector", "und", "gen") for c in cfgs[1:])
    assert all(c.stage == 3 and c.repa_weight == 0.0 for c in cfgs)
    assert all(c.init_from == f"{run_root}/stage2/final" for c in cfgs)
    assert cfgs[1].run_dir == f"{run_root}/ablations/t5_all_1to1/seed0"
    assert arms[0].paper == {"micro_f1": 53.2, "macro_f1": 36.0, "fd": 62.114, "kd": 0.041}
    with pytest.raises(ValueError, match="cannot keep"):
        run_config(arms[3], RECIPES[3], run_root, 0, 10)  # 10 * 5 / 4 is not whole


def test_coupling_repa_and_cleaning_arms_are_flags(run_root):
    arms = {v.label: v for v in all_variants()}
    cfg = {k: run_config(v, RECIPES[v.stage], run_root, 1, 16) for k, v in arms.items()}
    mot = cfg["MoT cross-modal self-attention (paper)"]
    assert (mot.stage, mot.trainable, mot.repa_weight, mot.seed) == (2, ("gen",), 0.5, 1)
    shared = cfg["shared weights (mot=False)"]
    assert shared.model_overrides == {"mot": False} and shared.timestep_shift == 3.0
    assert shared.trainable == ("und", "gen")
    stacked = cfg["final-states conditioning (stacked VLM)"]
    assert stacked.model_overrides["gen_conditioning"] == "final_states"
    assert cfg["REPA off"].repa_weight == 0.0
    raw, clean = cfg["raw report sections"], cfg["cleaned reports (paper)"]
    assert (raw.report_column, clean.report_column) == ("report_raw_sections", "report_clean")
    # the same sections and the same length budget: only the rewriting differs (issue 22.11)
    assert raw.max_report_tokens == clean.max_report_tokens == CLEANING_REPORT_TOKENS
    assert raw.stage == 1 and raw.init_from == f"{run_root}/stage1/vision_pretrained"
    # the coupling study's MoT arm and the REPA study's "on" arm are one run
    named = runs(list(arms.values()))
    assert len(named) == len(arms) - 1
    assert (
        arms["REPA on (weight 0.5, paper)"].run
        == arms["MoT cross-modal self-attention (paper)"].run
    )


def test_only_generation_arms_draw():
    arms = {v.label: v for v in all_variants()}
    assert arms["gen only (und frozen) 0:1"].draws and arms["REPA off"].draws
    assert not arms["raw report sections"].draws and not arms["cleaned reports (paper)"].draws


def test_bad_selections_are_rejected(run_root):
    with pytest.raises(ValueError, match="unknown studies"):
        select(["tabel5"])
    v = select(["cleaning"], cleaning_start="stage1/nowhere")[0]
    with pytest.raises(FileNotFoundError, match="stage1/nowhere"):
        run_config(v, RECIPES[1], run_root, 0, 16)
    with pytest.raises(TypeError, match="list of ints"):
        as_int_seeds(2)
    with pytest.raises(TypeError, match="list of ints"):
        as_int_seeds([0, "1"])


class _References:
    """What the ablation statistics read from the Measurer: the references' labels."""

    def __init__(self, y_ref: np.ndarray) -> None:
        self.y_ref = y_ref


def _labels(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return (rng.random((n, 14)) < p).astype(int)


def _flip(y: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """``y`` with a share of its entries flipped: a worse report writer."""
    return np.where(rng.random(y.shape) < share, 1 - y, y)


R = Resampling(n_resamples=300, seed=0)


def test_arm_values_are_seed_means_with_intervals_over_studies():
    rng = np.random.default_rng(0)
    y_ref = _labels(rng, 120, 0.3)
    m = _References(y_ref)
    data = {("a", s): StudyData(_flip(y_ref, 0.1 + 0.1 * s, rng)) for s in (0, 1)}
    row = summary.arm_row(m, data, "a", [0, 1], R)
    by_seed = [_micro_macro(y_ref, data[("a", s)].y_gen)[0] for s in (0, 1)]
    assert row["micro_f1"] == pytest.approx(100 * np.mean(by_seed))
    assert row["micro_f1_low"] < row["micro_f1"] < row["micro_f1_high"]
    assert row["micro_f1_sd"] == pytest.approx(100 * np.std(by_seed, ddof=1))
    assert "fd" not in row  # an arm without images has no image measures


def test_paired_verdicts_say_agrees_contradicts_or_undecided():
    """Table 5's claim: an und+gen arm has lower F1 than gen-only (the reference)."""
    rng = np.random.default_rng(1)
    y_ref = _labels(rng, 200, 0.3)
    m = _References(y_ref)
    good, bad = _flip(y_ref, 0.05, rng), _flip(y_ref, 0.35, rng)
    claims = [c for c in summary.claims({"table5": ["ref", "arm"]}) if c.measure == "micro_f1"]
    runs_of = {"ref": "r", "arm": "a"}
    cases = {"agrees": (good, bad), "contradicts": (bad, good), "undecided": (good, good)}
    for expected, (ref, arm) in cases.items():
        data = {("r", 0): StudyData(ref), ("a", 0): StudyData(arm)}
        v = summary.verdicts(m, data, runs_of, [0], claims, R).iloc[0]
        assert v["direction"] == expected
        assert v["arm_value"] == pytest.approx(100 * _micro_macro(y_ref, arm)[0])
        assert v["difference"] == pytest.approx(v["arm_value"] - v["reference_value"])
        if expected == "undecided":
            assert v["difference"] == 0 and v["p_value"] == 1.0
        else:
            assert v["p_value"] < 0.01 and v["difference_low"] * v["difference_high"] > 0
    text = summary.verdict_sentences(summary.verdicts(m, data, runs_of, [0], claims, R))
    assert "no detectable difference" in text[0] and "1 seed" in text[0]


def test_study_table_puts_baselines_after_the_arms_and_quotes_the_paper_apart():
    rng = np.random.default_rng(2)
    y_ref = _labels(rng, 60, 0.3)
    m = _References(y_ref)
    data = {("r", 0): StudyData(y_ref.copy()), ("a", 0): StudyData(_flip(y_ref, 0.2, rng))}
    cost = pd.DataFrame([{"run": "r", "seed": 0, "step_seconds": 0.1}])
    images = StudyData(None, align=rng.random(60))  # an image-only baseline: no F1
    base = {"baseline: x": StudyData(np.zeros_like(y_ref)), "baseline: images": images}
    table = summary.study_table(m, data, [("ref", "r"), ("arm", "a")], [0], base, cost, R)
    assert list(table["label"]) == ["ref", "arm", "baseline: x", "baseline: images"]
    assert list(table["source"]) == ["this run", "this run", *["baseline (this run)"] * 2]
    assert table.loc[0, "micro_f1"] == pytest.approx(100.0)  # the references themselves
    assert table.loc[2, "micro_f1"] == 0.0 and np.isnan(table.loc[3, "micro_f1"])
    assert table.loc[3, "alignment"] == pytest.approx(images.align.mean())
    assert list(table["seeds"].isna()) == [False, False, True, True]  # baselines: no seeds
    quoted = summary.quoted_rows({"gen only (und frozen) 0:1": {"micro_f1": 53.2, "fd": 62.1}})
    assert list(quoted["source"]) == ["paper (quoted)"] and quoted["micro_f1"].item() == 53.2


def test_und_fingerprint_follows_the_understanding_weights_only():
    torch.manual_seed(0)
    model = UniX(preset("tiny", num_layers=1, repa_depth=1))
    key = und_fingerprint(model)
    with torch.no_grad():
        model.language_model.layers[0].gen.q_proj.weight.add_(1.0)
        model.llm2vae.weight.add_(1.0)
    assert und_fingerprint(model) == key
    with torch.no_grad():
        next(model.connector.parameters()).add_(1e-3)
    assert und_fingerprint(model) != key
    counts = parameter_summary(model, ("gen",))
    assert 0 < counts["parameters_trained"] < counts["parameters"]


def test_run_fingerprint_sees_the_start_weights_and_the_precision(tmp_path, monkeypatch):
    """A finished ablation run is reused only if it started from the same weights (a stage
    retrained upstream keeps its path) and trains in the same resolved precision."""
    from unixlib.experiments.ablations import runner
    from unixlib.train.config import TrainConfig

    start = tmp_path / "stage2" / "final"
    start.mkdir(parents=True)
    (start / "model.safetensors").write_bytes(b"weights v1")
    cfg = TrainConfig(stage=3, run_dir=str(tmp_path / "run"), init_from=str(start), device="cpu")
    monkeypatch.setattr(runner.precision, "cpu_has_native_bf16", lambda: True)
    first = runner.fingerprint(cfg)
    assert first == runner.fingerprint(cfg)
    assert first["precision"] == "bf16 autocast"
    assert first["config"]["init_from"] == str(start)

    (start / "model.safetensors").write_bytes(b"weights v2")  # stage 2 retrained, same path
    retrained = runner.fingerprint(cfg)
    assert retrained["start_weights_sha256"] != first["start_weights_sha256"]

    monkeypatch.setattr(runner.precision, "cpu_has_native_bf16", lambda: False)
    assert runner.fingerprint(cfg)["precision"] == "fp32"
    fresh = TrainConfig(stage=1, run_dir=str(tmp_path / "run1"), device="cpu")
    assert runner.fingerprint(fresh)["start_weights_sha256"] is None


def test_ablation_reports_are_scored_on_table2_rows_with_their_prompts(monkeypatch):
    """Issue 22.14: with the paper's understanding test set, notebook 06 scores F1 on the same
    rows and prompts as Table 2 (``inputs.und``), not on the generation test split."""
    from types import SimpleNamespace

    import torch

    from unixlib.experiments.ablations import measure as m
    from unixlib.experiments.evaluation import EvalSettings

    und = pd.DataFrame(
        {
            "id": ["u0", "u1"],
            "image_path": ["a.png", "b.png"],
            "prompt": ["Describe the FINDINGS.", "Give the IMPRESSION."],
            "reference": ["Cardiomegaly.", "No acute process."],
        }
    )
    labels = pd.DataFrame(0.0, index=range(3), columns=list(m.LABELS))
    inputs = SimpleNamespace(
        und=und,
        labels=labels,
        references=["x", "y", "z"],
        prompts=["x", "y", "z"],
        tokenizer=None,
        images=lambda split, size, n=0: torch.zeros(3, 1, size, size),
        und_images=lambda size, preprocess="cache": torch.zeros(2, 1, size, size),
    )
    ref = SimpleNamespace(
        image_probs=lambda x: np.zeros((len(x), 14)), text_embed=lambda t: np.ones((len(t), 4))
    )
    encoders = SimpleNamespace(reference=ref, feats=lambda x: np.zeros((len(x), 4)))
    encoders.fixed = lambda kind, x: {"features": encoders.feats, "probs": ref.image_probs}[kind](x)
    seen = {}

    def fake_reports(model, images, tokenizer, max_new_tokens, prompt, batch_size):
        seen.update(n=len(images), prompt=prompt)
        return ["Cardiomegaly.", "Cardiomegaly."]

    monkeypatch.setattr(m, "generate_reports", fake_reports)
    monkeypatch.setattr(m, "und_fingerprint", lambda model: "k")
    measurer = m.Measurer(inputs, encoders, EvalSettings())
    model = SimpleNamespace(config=SimpleNamespace(image_size_und=8))
    y_gen = measurer.report_labels(measurer.reports(model))
    assert seen == {"n": 2, "prompt": und["prompt"].tolist()}
    assert measurer.y_ref.shape == y_gen.shape == (2, 14)
    card = list(m.LABELS).index("cardiomegaly")
    assert measurer.y_ref[:, card].tolist() == [1, 0] and y_gen[:, card].tolist() == [1, 1]
