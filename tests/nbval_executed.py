"""pytest plugin for ``make test``'s notebook step: keep what nbval executed.

nbval runs every cell of a notebook in one kernel and, in ``--nbval-lax`` mode, compares no
output; the outputs are thrown away. This plugin writes each cell's outputs back into the
notebook file it ran (``papermill_runs/test/NN_*.ipynb``, the copies ``reproduce
--prepare-only`` wrote), so that the test run leaves executed notebooks behind, as
``make reproduce`` does: ``tests/test_executed_notebooks.py`` checks them (figures inline, few
stream outputs) and the book is built from them. Load it with ``-p tests.nbval_executed``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

_touched: dict[Path, nbformat.NotebookNode] = {}


def _output(node: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """nbval's output node as a valid nbformat output."""
    kind = node.output_type
    if kind == "stream":
        return nbformat.v4.new_output("stream", name=node.name, text=node.text)
    if kind == "error":
        return nbformat.v4.new_output(
            "error", ename=node.ename, evalue=node.evalue, traceback=node.traceback
        )
    count = node.get("execution_count") if kind == "execute_result" else None
    extra = {"execution_count": count} if kind == "execute_result" else {}
    return nbformat.v4.new_output(kind, data=node.data, metadata=node.get("metadata", {}), **extra)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if call.when != "call" or getattr(item, "test_outputs", None) is None:
        return
    cell = item.cell  # the cell object of the notebook nbval read (item.parent.nb)
    cell.outputs = [_output(o) for o in item.test_outputs]
    cell.execution_count = item.cell_num + 1
    _touched[Path(str(item.parent.fspath))] = item.parent.nb


def pytest_sessionfinish(session, exitstatus):
    for path, nb in _touched.items():
        nbformat.write(nb, path)
