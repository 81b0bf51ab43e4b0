"""--report-to: unknown targets and a missing TensorBoard stop with one line; present, it logs."""

from __future__ import annotations

import importlib.util

import pytest

from unixlib.train.reporting import TENSORBOARD_DIR, ReportError, open_reporters

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def test_no_target_no_reporter(tmp_path):
    assert open_reporters((), tmp_path) == []


def test_unknown_target_is_a_one_line_error(tmp_path):
    with pytest.raises(ReportError, match=r"unknown --report-to \['wandb'\]; choose from"):
        open_reporters(["wandb"], tmp_path)


@pytest.mark.skipif(HAS_TENSORBOARD, reason="tensorboard is installed")
def test_missing_tensorboard_says_how_to_install_it(tmp_path):
    with pytest.raises(ReportError, match=r"needs the tensorboard package: pip install"):
        open_reporters(["tensorboard"], tmp_path)
    assert not (tmp_path / TENSORBOARD_DIR).exists()


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="the optional tensorboard extra is absent")
def test_tensorboard_gets_every_numeric_field(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (reporter,) = open_reporters(["tensorboard"], tmp_path)
    for step in (1, 2):
        reporter.log({"step": step, "loss": 1.0 / step, "lr": 1e-4, "note": "x"})
    reporter.close()
    events = EventAccumulator(str(tmp_path / TENSORBOARD_DIR))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["train/loss", "train/lr"]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([1.0, 0.5])
