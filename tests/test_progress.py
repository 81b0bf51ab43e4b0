"""Progress bars follow UNIXLIB_PROGRESS: text on stderr under the runner, none when off."""

from __future__ import annotations

import pytest

from unixlib.config.progress import ENV_INTERVAL, ENV_MODE, bar, mode


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
    with pytest.raises(ValueError, match=r"UNIXLIB_PROGRESS='loud'; choose one of auto, text, off"):
        mode()
