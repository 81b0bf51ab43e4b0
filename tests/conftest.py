"""Shared fixtures. Nothing here reaches the network: tests run with HF_HUB_OFFLINE=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real public CXR files); tests using it skip cleanly when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (a fresh clone without the shared folder)")
    return SHARED_DATA
