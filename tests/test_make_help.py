"""``make help`` lists every target of the Makefile and the ARGS= variable."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from train_helpers import REPO_ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_every_target_and_args() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE)
    phony = re.search(r"^\.PHONY:(.*)$", makefile, flags=re.MULTILINE)[1].split()
    assert set(phony) <= set(targets)
    out = subprocess.run(
        ["make", "-s", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = re.findall(r"^  ([a-z][a-z-]*) +\S", out, flags=re.MULTILINE)
    assert sorted(listed) == sorted(targets)
    assert "ARGS=" in out and "PROFILE=" in out
