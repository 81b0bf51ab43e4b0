"""Progress bars follow UNIXLIB_PROGRESS: text on stderr, a log file under the series runner
(quiet), none when off."""

from __future__ import annotations

import pytest

from unixlib.config.progress import ENV_INTERVAL, ENV_LOG, ENV_MODE, bar, log, mode


def test_text_mode_draws_on_stderr_and_yields_every_item(monkeypatch, capsys):
    monkeypatch.setenv(ENV_MODE, "text")
    monkeypatch.setenv(ENV_INTERVAL, "0")
    assert list(bar(range(5), desc="work", unit="row")) == [0, 1, 2, 3, 4]
    err = capsys.readouterr().err
    assert "work: 100%" in err and "5/5" in err and "row" in err


def test_off_mode_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv(ENV_MODE, "off")
    assert list(bar(range(3), desc="quiet")) == [0, 1, 2]
    with bar(total=3, desc="quiet") as progress:
        progress.update(3)
        progress.set_postfix(loss="1.0")
    assert capsys.readouterr().err == ""


def test_unknown_mode_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(ENV_MODE, "loud")
    with pytest.raises(
        ValueError, match=r"UNIXLIB_PROGRESS='loud'; choose one of auto, text, quiet, off"
    ):
        mode()


def test_quiet_mode_writes_bars_and_log_lines_to_the_log_file_only(monkeypatch, capsys, tmp_path):
    """What the series runner sets for its kernels: the executed notebook keeps none of it."""
    path = tmp_path / "run" / "progress.log"
    monkeypatch.setenv(ENV_MODE, "quiet")
    monkeypatch.setenv(ENV_LOG, str(path))
    monkeypatch.setenv(ENV_INTERVAL, "0")
    assert list(bar(range(4), desc="stage 1", unit="step")) == [0, 1, 2, 3]
    log("stage 1 step 4/4 loss 0.5")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    text = path.read_text()
    assert "stage 1: 100%" in text and "4/4" in text
    assert text.endswith("stage 1 step 4/4 loss 0.5\n")


def test_log_lines_go_to_stdout_outside_quiet_mode(monkeypatch, capsys):
    monkeypatch.setenv(ENV_MODE, "off")
    log("step 10/300 loss 1.0")
    assert capsys.readouterr().out == "step 10/300 loss 1.0\n"
