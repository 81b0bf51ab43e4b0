"""Notebook 06 does each piece of work once: bootstraps shared by tables and verdicts, the
same numbers to the digit with and without the sharing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unixlib.eval.uncertainty import Resampling
from unixlib.experiments.ablations import summary
from unixlib.experiments.ablations.measure import StudyData
from unixlib.experiments.ablations.stats import MEASURES, Resamples, arm_comparison

R = Resampling(n_resamples=200, seed=3)
N = 40


class _References:
    """What the statistics read from the Measurer: reference labels, real features/probs."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.y_ref = (rng.random((N, 14)) < 0.3).astype(int)
        self.real_feats = rng.normal(size=(N, 8)).astype(np.float32)
        self.real_probs = rng.random((N, 14)).astype(np.float32)
        self.label_array = (rng.random((N, 14)) < 0.3).astype(float)


def _arm(rng: np.random.Generator, shift: float) -> StudyData:
    return StudyData(
        (rng.random((N, 14)) < 0.3).astype(int),
        rng.normal(shift, 1.0, size=(N, 8)).astype(np.float32),
        rng.random(N),
        rng.random((N, 14)),
    )


@pytest.fixture
def fixture():
    rng = np.random.default_rng(0)
    m = _References(rng)
    data = {(run, 0): _arm(rng, i / 2) for i, run in enumerate(("ref", "a", "b"))}
    base = {"baseline: start": _arm(rng, 0.1), "baseline: words": StudyData(m.y_ref.copy())}
    cost = pd.DataFrame([{"run": run, "seed": 0, "step_seconds": 0.5} for run in ("ref", "a")])
    return m, data, base, cost


def _everything(m, data, base, cost, cache):
    """Two studies' tables that share the reference arm and a baseline, then the verdicts."""
    one = summary.study_table(m, data, [("R", "ref"), ("A", "a")], [0], base, cost, R, None, cache)
    shown = ("micro_f1", "fd")
    two = summary.study_table(m, data, [("R", "ref"), ("B", "b")], [0], base, cost, R, shown, cache)
    claims = summary.claims({"coupling": ["R", "A", "B"]})
    runs = {"R": "ref", "A": "a", "B": "b"}
    return one, two, summary.verdicts(m, data, runs, [0], claims, R, cache)


def test_tables_and_verdicts_are_the_same_to_the_digit_with_the_shared_bootstraps(fixture):
    cached = _everything(*fixture, Resamples(R))
    fresh = _everything(*fixture, None)
    for a, b in zip(cached, fresh, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    # only the measures asked for are computed, in the usual column order
    assert [c for c in cached[1] if c in MEASURES] == ["micro_f1", "fd"]


def test_each_arm_is_bootstrapped_once_per_measure(fixture):
    m, data, base, cost = fixture
    cache = Resamples(R)
    _everything(m, data, base, cost, cache)
    # table one: 3 image arms (ref, a, start) x 6 measures + the report baseline's 2 F1s;
    # table two adds arm b's micro_f1 and fd; the verdicts only b's faithfulness
    assert cache.computed == 3 * 6 + 2 + 2 + 1
    before = cache.computed
    _everything(m, data, base, cost, cache)
    assert cache.computed == before  # the second pass does no bootstrap at all


def test_other_arrays_are_a_miss_even_when_equal(fixture):
    m, data, _, _ = fixture
    cache = Resamples(R)
    fd = MEASURES["fd"]
    a = [fd.arrays(m, data[("a", 0)])]
    v1 = cache.values(fd, a)
    copy = StudyData(None, feats=data[("a", 0)].feats.copy())
    v2 = cache.values(fd, [fd.arrays(m, copy)])
    assert cache.computed == 2 and v1[0] == v2[0]
    assert np.array_equal(v1[1], v2[1])
    cache.values(MEASURES["kd"], a)  # another measure on the same arrays
    assert cache.computed == 3
    other = Resamples(Resampling(n_resamples=200, seed=4))  # other draws: its own cache
    assert not np.array_equal(other.values(fd, a)[1], v1[1])


def test_a_comparison_needs_the_same_studies(fixture):
    m, data, _, _ = fixture
    fd = MEASURES["fd"]
    short = StudyData(None, feats=data[("b", 0)].feats[:10])
    with pytest.raises(ValueError, match="same studies"):
        arm_comparison(fd, [fd.arrays(m, data[("a", 0)])], [(m.real_feats[:10], short.feats)], R)


RECIPES = {
    1: {"steps": 5, "lr": 1e-3, "warmup_steps": 0, "image_size": 64, "device": "cpu"},
    2: {"steps": 7, "lr": 1e-3, "image_size": 64, "repa_weight": 0.5, "device": "cpu"},
    3: {"steps": 7, "lr": 1e-3, "image_size": 64, "device": "cpu"},
}


@pytest.fixture
def fake_training(tmp_path, monkeypatch):
    """A run root with start weights, and a training loop that only writes what a finished
    run leaves (final weights, metrics) and counts its calls."""
    from unixlib.experiments.ablations import runner

    for start in ("stage1/final", "stage1/vision_pretrained", "stage2/final"):
        (tmp_path / start).mkdir(parents=True)
        (tmp_path / start / "model.safetensors").write_bytes(start.encode())
    calls = []

    def train(cfg, where):
        calls.append(cfg.run_dir)
        (where / "final").mkdir(parents=True, exist_ok=True)
        (where / "final" / "model.safetensors").write_bytes(b"trained")
        rows = [{"step": i + 1, "loss": 1.0 / (i + 1), "step_seconds": 0.1} for i in range(3)]
        (where / "metrics.jsonl").write_text("".join(f"{r}\n".replace("'", '"') for r in rows))

    monkeypatch.setattr(runner, "_train_quietly", train)
    return tmp_path, calls


def test_finished_runs_are_reused_only_with_the_same_config_start_and_precision(
    fake_training, capsys
):
    from unixlib.experiments.ablations.runner import train_runs
    from unixlib.experiments.ablations.variants import all_variants

    root, calls = fake_training
    variants = all_variants()
    first = train_runs(variants, RECIPES, str(root), [0], 16)
    lines = capsys.readouterr().out.splitlines()
    assert len(calls) == len(first) == len(variants) - 1  # REPA "on" is the MoT run
    assert len(lines) == len(variants)  # one line per arm
    repa_on = lines[-4]
    assert repa_on.startswith("[repa] REPA on") and "reused, the same run as [coupling]" in repa_on
    assert not any(r.reused for r in first.values())

    again = train_runs(variants, RECIPES, str(root), [0], 16)
    assert len(calls) == len(first)  # nothing trained the second time
    assert all(r.reused and r.seconds == 0.0 for r in again.values())
    assert all(": reused" in line for line in capsys.readouterr().out.splitlines())

    (root / "stage2" / "final" / "model.safetensors").write_bytes(b"stage 2 retrained")
    train_runs(variants, RECIPES, str(root), [0], 16)
    retrained = [c for c in calls[len(first) :]]
    assert len(retrained) == 5 and all("/t5_" in c for c in retrained)  # Table 5 starts there

    n = len(calls)
    recipes = {**RECIPES, 1: {**RECIPES[1], "steps": 6}}  # another cleaning recipe
    train_runs(variants, recipes, str(root), [0], 16)
    assert sorted(c.rsplit("/", 2)[-2] for c in calls[n:]) == ["u_clean", "u_raw"]
    n = len(calls)
    train_runs(variants, recipes, str(root), [1], 16)  # another seed: every run anew
    assert len(calls) - n == len(first)
