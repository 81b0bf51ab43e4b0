"""The series runner: selection, the manifest, and stopping at the first failure."""

from __future__ import annotations

import json

import nbformat
import pytest

from unixlib.experiments import series as runs


def test_select_by_prefix_stem_and_start():
    stems = ["01_clean_data", "02_train_ar", "03_train_diffusion"]
    assert runs.select(stems) == stems
    assert runs.select(stems, only=["1", "03_train_diffusion"]) == [
        "01_clean_data",
        "03_train_diffusion",
    ]
    assert runs.select(stems, start="02") == stems[1:]
    assert runs.select(stems, only=["01", "03"], start="02") == ["03_train_diffusion"]
    with pytest.raises(runs.SeriesError, match="'7' names no notebook"):
        runs.select(stems, only=["7"])


def _write_nb(path, params: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))


@pytest.mark.slow
def test_series_runs_in_order_writes_manifest_and_stops_at_failure(tmp_path, capfd):
    nbs, profiles, run_dir = tmp_path / "nbs", tmp_path / "profiles", tmp_path / "run"
    nbs.mkdir()
    profiles.mkdir()
    common = f'run_dir = "{run_dir}"\nfigures_dir = "{tmp_path / "fig"}"\nseed = 0\n'
    write_marker = "from pathlib import Path\nPath(run_dir).mkdir(parents=True, exist_ok=True)\n"
    _write_nb(
        nbs / "01_ok.ipynb",
        common + "value = 1\n",
        write_marker
        + "Path(run_dir, 'one').write_text(str(value))\n"
        + "Path(figures_dir).mkdir(parents=True, exist_ok=True)\n"
        + "Path(figures_dir, 'one.png').write_text('x')\n"
        + "print('streamed', value)",
    )
    _write_nb(
        nbs / "02_fails.ipynb",
        common + "boom = True\n",
        "if boom:\n    raise RuntimeError('kaput')",
    )
    _write_nb(
        nbs / "03_never.ipynb",
        common,
        write_marker
        + "Path(run_dir, 'three').write_text('x')\n"
        + "Path(figures_dir, 'three.png').write_text('x')",
    )
    (tmp_path / "fig").mkdir()
    (tmp_path / "fig" / "stale.png").write_text("an earlier run's figure")
    (profiles / "t.yaml").write_text(
        f"parameters: {{run_dir: '{run_dir}', value: 0}}\nnotebooks:\n  01_ok: {{value: 5}}\n"
    )

    with pytest.raises(
        runs.SeriesError, match=r"02_fails failed in cell \d+ \(RuntimeError: kaput\)"
    ):
        runs.reproduce("t", notebook_dir=nbs, profile_dir=profiles, progress=False)

    assert (run_dir / "one").read_text() == "5", "parameters reach the notebook"
    assert (run_dir / "01_ok.ipynb").is_file(), "earlier outputs stay"
    assert not (run_dir / "three").exists(), "nothing runs after the failure"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [n["status"] for n in manifest["notebooks"]] == ["ok", "failed"]
    assert manifest["profile"] == "t" and manifest["parameters"]["01_ok"]["value"] == 5
    assert manifest["seed"]["01_ok"] == 0 and manifest["packages"]["torch"].startswith("2.13.0")
    assert {"commit", "dirty"} <= set(manifest["git"]) and "cpu_count" in manifest["device"]
    figures = [f.rsplit("/", 1)[-1] for f in manifest["figures"]]
    assert figures == ["one.png"], "only the files this run wrote"

    # --only skips the failing notebook; --set overrides reach it
    runs.reproduce(
        "t",
        only=["01", "03"],
        overrides=["01_ok.value=7"],
        notebook_dir=nbs,
        profile_dir=profiles,
        progress=False,
        log_output=True,
    )
    assert (run_dir / "one").read_text() == "7" and (run_dir / "three").exists()
    assert "streamed 7" in capfd.readouterr().out, "--log-output streams the notebook's prints"
    # --only merged into the manifest: 02's failed entry stays, 01 and 03 are this run's
    merged = json.loads((run_dir / "manifest.json").read_text())
    assert [(n["notebook"], n["status"]) for n in merged["notebooks"]] == [
        ("01_ok", "ok"),
        ("02_fails", "failed"),
        ("03_never", "ok"),
    ]
    assert merged["parameters"]["01_ok"]["value"] == 7 and "02_fails" in merged["parameters"]
    assert [f.rsplit("/", 1)[-1] for f in merged["figures"]] == ["one.png", "three.png"]
    assert [r["notebooks"] for r in merged["runs"]] == [
        ["01_ok", "02_fails"],
        ["01_ok", "03_never"],
    ]


def test_output_counts_reads_images_streams_and_printed_figures(tmp_path):
    """What the runner records per executed notebook (manifest.json) and warns about."""
    cells = [
        {"cell_type": "markdown", "source": "x"},
        {
            "cell_type": "code",
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": "a"},
                {"output_type": "stream", "name": "stderr", "text": "b"},
                {"output_type": "display_data", "data": {"image/png": "iVBO", "text/plain": "F"}},
                {"output_type": "execute_result", "data": {"text/plain": "<Figure size 1x1>"}},
            ],
        },
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    counts = runs.output_counts(path)
    assert counts == {"images": 1, "streams": 2, "printed_figures": 1}
    assert runs._document_warnings("nb", counts) == ["nb: 1 figure(s) printed as text, not drawn"]
    assert runs._document_warnings("nb", {**counts, "images": 0, "printed_figures": 0}) == [
        "nb: no inline figure in the executed notebook"
    ]
