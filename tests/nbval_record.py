"""pytest plugin for ``make test``'s nbval step: keep what each notebook cell printed and drew.

nbval runs every cell of a notebook in a kernel and checks it, but never writes the outputs
back: after it, ``papermill_runs/test/*.ipynb`` would still be the unexecuted copies that
``reproduce --prepare-only`` wrote. With this plugin (``pytest -p tests.nbval_record
--nbval-lax ...``) each cell keeps the outputs nbval collected from the kernel, numbered in run
order, and each notebook is saved in place when the session ends, so that the executed test
series can be read and rendered as a book (``tests/test_book_browser.py``). A cell that did not
run (after a failure, or skipped) keeps no outputs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

_NOTEBOOKS: dict[Path, nbformat.NotebookNode] = {}
_COUNTS: dict[Path, int] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """After a notebook cell ran (passed or failed), store nbval's outputs in the cell."""
    yield
    outputs = getattr(item, "test_outputs", None)
    cell, notebook = getattr(item, "cell", None), getattr(item.parent, "nb", None)
    if outputs is None or cell is None or notebook is None:
        return  # not an nbval cell, or it never reached the kernel
    path = Path(str(item.parent.fspath))
    count = _COUNTS[path] = _COUNTS.get(path, 0) + 1
    cell.outputs = [nbformat.from_dict(dict(out)) for out in outputs]
    cell.execution_count = count
    for out in cell.outputs:
        if out.output_type == "execute_result":
            out.execution_count = count
    _NOTEBOOKS[path] = notebook


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write every notebook that ran, in place."""
    for path, notebook in _NOTEBOOKS.items():
        nbformat.write(notebook, str(path))
