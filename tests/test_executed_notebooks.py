"""The executed notebooks read as documents (issue 21): figures inline, few stream outputs.

Runs after ``make test``'s notebook step (marker ``executed``), on the notebooks it left in
``papermill_runs/test/`` (``tests/nbval_executed.py`` writes their outputs back); skipped when
that folder holds no executed notebook. ``make reproduce``'s copies in
``papermill_runs/<profile>/`` can be checked the same way:
``UNIXLIB_EXECUTED_DIR=papermill_runs/smoke pytest -m executed tests/test_executed_notebooks.py``.
"""

from __future__ import annotations

import os

import nbformat
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.executed

RUN_DIR = REPO_ROOT / os.environ.get("UNIXLIB_EXECUTED_DIR", "papermill_runs/test")
MAX_STREAMS = 40  # stream outputs per notebook (progress frames and step logs go to a log file)


def _executed() -> list:
    notebooks = []
    for path in sorted(RUN_DIR.glob("0*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
            notebooks.append(pytest.param(nb, id=path.stem))
    return notebooks or [pytest.param(None, id="none")]


@pytest.mark.parametrize("nb", _executed())
def test_every_figure_is_inline_and_outputs_are_quiet(nb):
    if nb is None:
        pytest.skip(f"no executed notebook in {RUN_DIR} (make test's notebook step writes them)")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    streams = sum(o.output_type == "stream" for o in outputs)
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors[0].get("ename")
    # Every notebook of the series draws: a figure that is only a file is not shown.
    assert images >= 1, "no inline figure"
    printed_figures = [
        o
        for o in outputs
        if "<Figure size" in o.get("data", {}).get("text/plain", "")
        and "image/png" not in o.get("data", {})
    ]
    assert not printed_figures, "a figure was printed as text instead of drawn"
    assert streams <= MAX_STREAMS, f"{streams} stream outputs"
