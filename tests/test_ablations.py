"""Notebook 06's pieces: the arms as stage flags, the aggregation and the verdict logic."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from unixlib.experiments.ablations import summary
from unixlib.experiments.ablations.runner import as_int_seeds, parameter_summary, und_fingerprint
from unixlib.experiments.ablations.variants import all_variants, run_config, runs, select
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
    raw, clean = cfg["raw reports"], cfg["cleaned reports (paper)"]
    assert (raw.report_column, clean.report_column) == ("report_raw", "report_clean")
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
    assert not arms["raw reports"].draws and not arms["cleaned reports (paper)"].draws


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


def _measured() -> pd.DataFrame:
    rows = []
    for seed, (a, b) in enumerate([(0.50, 0.40), (0.60, 0.42)]):
        rows += [
            {
                "study": "table5",
                "label": "ref",
                "run": "r",
                "seed": seed,
                "micro_f1": a,
                "fd": 10.0 + seed,
            },
            {"study": "table5", "label": "arm", "run": "a", "seed": seed, "micro_f1": b, "fd": 9.0},
        ]
    return pd.DataFrame(rows)


def test_aggregate_gives_mean_and_sample_sd_over_seeds():
    agg = summary.aggregate(_measured(), "table5").set_index("label")
    assert list(agg.index) == ["ref", "arm"]
    assert agg.at["ref", "micro_f1"] == pytest.approx(0.55)
    assert agg.at["ref", "micro_f1_sd"] == pytest.approx(math.sqrt(0.005))  # ddof 1
    assert agg.at["arm", "fd_sd"] == 0.0
    assert (agg["seeds"] == 2).all()


def test_verdicts_direction_and_spread_by_hand():
    claims = summary.claims({"table5": ["ref", "arm"]})
    assert [(c.measure, c.better) for c in claims] == [("micro_f1", False), ("fd", False)]
    v = summary.verdicts(_measured(), claims).set_index("measure")
    # F1: arm 0.41 vs ref 0.55 -> worse, as the paper; |-0.14| vs sd 0.0707 + 0.0141
    assert v.at["micro_f1", "difference"] == pytest.approx(-0.14)
    assert v.at["micro_f1", "direction"] == "agrees"
    assert v.at["micro_f1", "spread"] == pytest.approx(math.sqrt(0.005) + math.sqrt(0.0002))
    assert v.at["micro_f1", "exceeds_spread"] == "yes"
    # FD: arm 9 vs ref 10.5 -> better (lower), the paper has it worse; 1.5 > sd 0.707 + 0
    assert v.at["fd", "direction"] == "disagrees"
    assert v.at["fd", "exceeds_spread"] == "yes"
    one_seed = summary.verdicts(_measured().query("seed == 0"), claims)
    assert set(one_seed["exceeds_spread"]) == {"unknown (1 seed)"}
    text = summary.verdict_sentences(v.reset_index())
    assert "disagrees" in text[1] and "better" in text[1]


def test_study_table_quotes_the_paper_in_percent():
    base = pd.DataFrame([{"label": "baseline: x", "micro_f1": 0.3}])
    table = summary.study_table(
        _measured(), "table5", base, {"gen only (und frozen) 0:1": {"micro_f1": 53.2, "fd": 62.1}}
    )
    assert list(table["source"]) == [
        "this run",
        "this run",
        "baseline (this run)",
        "paper (quoted)",
    ]
    assert table["micro_f1"].tolist() == pytest.approx([55.0, 41.0, 30.0, 53.2])


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
