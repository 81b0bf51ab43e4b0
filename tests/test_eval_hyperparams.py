"""Table 1 (unixlib.experiments.hyperparams): this run's settings read back from each stage's resolved
config.json, beside the paper's, with "not run" for a stage that wrote none."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from unixlib.experiments.hyperparams import (
    GROUP_LABELS,
    NOT_RUN,
    fmt_groups,
    fmt_number,
    paper_column,
    run_column,
    training_table,
)
from unixlib.train.checkpoint import step_dir_name
from unixlib.train.config import GROUPS, TrainConfig, stage_config
from unixlib.viz.tables import save_table

# Stage 1 at its defaults (lr, warm-up) on 2 processes; stage 2 with its own lr and shift;
# stage 3 never ran.
PARAMS = {
    1: {"steps": 7, "batch_size": 4, "grad_accum": 2, "image_size": 32},
    2: {
        "steps": 5,
        "batch_size": 3,
        "lr": 3e-4,
        "warmup_steps": 2,
        "timestep_shift": 3.0,
    },
}
WORLD_1 = 2


def _write_stage(root: Path, stage: int) -> TrainConfig:
    """Save the stage's config as the loop does (``<run_dir>/stage<N>/config.json``)."""
    cfg = stage_config(stage, {"run_dir": str(root), **PARAMS[stage]})
    cfg.save(Path(cfg.run_dir) / "config.json")
    return cfg


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, dict[int, TrainConfig], pd.DataFrame]:
    configs = {s: _write_stage(tmp_path, s) for s in PARAMS}
    # Stage 1's final checkpoint: data position = steps x batch x accum x world (loop.py).
    cfg = configs[1]
    state = tmp_path / "stage1" / "checkpoints" / step_dir_name(cfg.steps) / "state.json"
    state.parent.mkdir(parents=True)
    position = cfg.steps * cfg.batch_size * cfg.grad_accum * WORLD_1
    state.write_text(json.dumps({"step": cfg.steps, "data_position": position}))
    return tmp_path, configs, training_table(tmp_path).set_index("setting")


def test_this_run_columns_are_the_configs(run) -> None:
    _, configs, table = run
    for stage, cfg in configs.items():
        col = table[run_column(stage)]
        assert col["learning rate"] == fmt_number(cfg.lr)
        assert col["steps"] == fmt_number(cfg.steps)
        assert col["warm-up steps"] == fmt_number(cfg.warmup_steps)
        assert col["resolution (px)"] == str(cfg.image_size)
        assert col["trainable groups"] == fmt_groups(cfg.trainable)
    one, two = table[run_column(1)], table[run_column(2)]
    assert one["learning rate"] == "1e-4" and one["warm-up steps"] == "80"  # stage defaults
    assert one["trainable groups"] == "vision tower, connector, und. branch"
    assert two["learning rate"] == "3e-4" and two["trainable groups"] == "gen. branch"
    assert one["tasks (und:gen)"] == "1:0" and two["tasks (und:gen)"] == "0:1"
    assert two["REPA"].startswith("yes") and "0.5" in two["REPA"] and one["REPA"] == "no"
    assert one["timestep shift (training)"] == "-" and two["timestep shift (training)"] == "3"
    assert two["initialised from"] == "stage1/final"


def test_global_batch_uses_the_world_size_the_checkpoint_implies(run) -> None:
    _, configs, table = run
    one, two = configs[1], configs[2]
    batch1 = table.loc["global batch", run_column(1)]
    assert batch1.startswith(f"{one.batch_size * one.grad_accum * WORLD_1} ")
    assert f"x {WORLD_1} proc" in batch1
    # No checkpoint for stage 2: the per-process batch, saying the world size is unknown.
    batch2 = table.loc["global batch", run_column(2)]
    assert batch2.startswith(f"{two.batch_size * two.grad_accum} per process")


def test_paper_columns_quote_paper_table_1(run) -> None:
    table = run[2]
    expected = {
        "learning rate": ("1e-4", "2e-4", "1e-4"),
        "warm-up steps": ("80", "2,000", "0"),
        "steps": ("3,840", "75,000", "5,000"),
        "global batch": ("256", "256", "256"),
        "resolution (px)": ("384", "256", "512"),
        "AdamW betas": ("(0.9, 0.95)",) * 3,
        "AdamW eps": ("1e-15",) * 3,
        "weight decay": ("0",) * 3,
        "grad clip": ("1.0",) * 3,
    }
    for setting, values in expected.items():
        assert tuple(table.loc[setting, paper_column(s)] for s in (1, 2, 3)) == values, setting
    assert table.loc["trainable groups", paper_column(1)] == "SigLIP, connector, und. LLM"
    assert table.loc["trainable groups", paper_column(2)] == "gen. LLM branch"
    repa = [table.loc["REPA", paper_column(s)] for s in (1, 2, 3)]
    assert repa[0] == repa[2] == "no" and "RadDino" in repa[1] and "0.5" in repa[1]


def test_missing_stage_says_not_run(run, tmp_path: Path) -> None:
    table = run[2]
    assert set(table[run_column(3)]) == {NOT_RUN}
    assert NOT_RUN not in set(table[run_column(1)])
    empty = training_table(tmp_path / "nothing_here")  # no stage at all: still the paper's table
    assert all(set(empty[run_column(s)]) == {NOT_RUN} for s in (1, 2, 3))
    assert list(empty.columns) == ["setting"] + [
        c for s in (1, 2, 3) for c in (run_column(s), paper_column(s))
    ]


def test_table_writes_with_save_table(run, tmp_path: Path) -> None:
    table = run[2].reset_index()
    paths = save_table(table, tmp_path / "out", "table1", caption="Table 1")
    md = paths["md"].read_text()
    assert "3,840" in md and "1e-4" in md and NOT_RUN in md


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3840, "3,840"),
        (1e-4, "1e-4"),
        (2.5e-4, "2.5e-4"),
        (1e-15, "1e-15"),
        (0.0, "0"),
        (0.5, "0.5"),
        (75000, "75,000"),
        (3.0, "3"),
    ],
)
def test_fmt_number(value: float, text: str) -> None:
    assert fmt_number(value) == text


def test_every_parameter_group_has_a_label() -> None:
    assert set(GROUP_LABELS) == set(GROUPS)
