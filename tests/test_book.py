"""The book (``unixlib.experiments.book``): tables beside the paper's rows, links, math, run
facts, and a whole build of a small made-up run (no browser: tests/test_book_browser.py)."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys

import nbformat
import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT
from unixlib.experiments import book
from unixlib.experiments.book_facts import (
    RunFacts,
    ablation_scale,
    is_executed,
    model_parameter_count,
    read_run,
    scale_line,
)
from unixlib.experiments.book_math import to_mathml
from unixlib.experiments.book_render import Entry, rewrite_links
from unixlib.experiments.book_results import (
    ablation,
    parse_table,
    split_paper_rows,
    standard_error_points,
    title_of,
)

TABLE = """Table 2: F1 (%) on the test split

| method | source | micro14 |
|---|---|---|
| UniX (this run) | this run | 69.7 |
| retrieval \\| nearest | baseline (this run) | 53.1 |
| LLaVA-Rad | paper (quoted) | 57.3 |
"""


def test_a_table_splits_into_this_runs_rows_and_the_papers():
    table = parse_table(TABLE)
    assert table.caption == "Table 2: F1 (%) on the test split"
    assert table.header == ["method", "source", "micro14"]
    ours, paper = split_paper_rows(table)
    assert [r[0] for r in ours] == ["UniX (this run)", "retrieval \\| nearest"]  # one cell
    assert paper == [["LLaVA-Rad", "paper (quoted)", "57.3"]]


def test_a_file_with_two_tables_or_none_is_shown_as_written():
    assert parse_table(TABLE + "\n" + TABLE) is None
    assert parse_table("just a caption") is None
    no_source = parse_table("| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert split_paper_rows(no_source) == ([["1", "2"]], [])


def test_titles_come_from_file_stems():
    assert title_of("table2_understanding") == "Table 2: understanding"
    assert title_of("table_generation_faithfulness") == "Table: generation faithfulness"
    assert title_of("ablation_repa") == "Ablation: repa"
    assert title_of("cleaning_checks") == "Cleaning checks"


def test_the_scale_line_names_model_data_and_schedule(tmp_path):
    params = {
        "01_clean_data": {"source": "synth", "image_size": 64},
        "02_train_ar": {"preset": "tiny", "steps": 300},
        "03_train_diffusion": {"steps": 210},
        "04_joint_stage": {"steps": 450},
        "06_ablations": {"steps_gen": 30, "steps_und": 40, "seeds": [0], "n_test": 100},
    }
    splits = {"train": 2000, "validate": 100, "test": 200}
    run = RunFacts("smoke", tmp_path, tmp_path, [], params, splits=splits, n_parameters=7_704_000)
    assert scale_line(run) == (
        "tiny preset (~7.7M parameters), SynthCXR 64 px, 2,000 train / 200 test images, "
        "stages 1/2/3: 300/210/450 steps"
    )
    assert (
        ablation_scale(run)
        == "arms of 30 generation / 40 understanding steps, 1 seed, 100 test images"
    )
    del params["04_joint_stage"], params["06_ablations"]
    assert scale_line(run).endswith("stages 1/2/3: 300/210/- steps")
    assert ablation_scale(run) == ""
    assert ablation("table5_joint_optimisation") and ablation("ablation_repa")
    assert not ablation("table2_understanding")


def test_standard_error_of_a_proportion():
    # sqrt(0.7 * 0.3 / 200) = sqrt(0.00105) = 0.032404 -> 3.24 points
    assert standard_error_points(200) == pytest.approx(3.2404, abs=1e-4)
    assert standard_error_points(100, p=0.5) == pytest.approx(5.0)


def test_links_to_notebooks_become_chapters_and_repository_links_text(tmp_path):
    toc = [
        Entry("index.html", "Overview", "page"),
        Entry("02_train_ar.html", "02", "notebook", "02_train_ar"),
    ]
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"x")
    page = (
        '<a href="02_train_ar.ipynb#Train">two</a> <a href="../notebooks/02_train_ar.ipynb">2</a> '
        '<a href="../unixlib/model/flow.py">code</a> <a href="https://arxiv.org/abs/1">web</a> '
        '<a href="#here">here</a> <a href="index.html">home</a> <a href="figures/a.png">f</a>'
    )
    out = rewrite_links(page, toc, tmp_path)
    assert '<a href="02_train_ar.html#Train">two</a>' in out
    assert '<a href="02_train_ar.html">2</a>' in out
    assert (
        '<span class="book-offsite" title="not part of the book: ../unixlib/model/flow.py">'
        "code</span>"
    ) in out
    for kept in ("https://arxiv.org/abs/1", "#here", "index.html", "figures/a.png"):
        assert f'href="{kept}"' in out


def test_math_becomes_mathml_and_unknown_commands_stay_source():
    unknown: list[str] = []
    block = to_mathml(r"\frac{a}{b} + \sqrt{x}", True, unknown)
    assert block.startswith("<math") and 'display="block"' in block and "<mfrac>" in block
    assert unknown == []
    kept = to_mathml(r"\notacommand{x} + 1", False, unknown)
    assert kept == '<code class="book-tex">$\\notacommand{x} + 1$</code>'
    assert unknown == [r"\notacommand{x} + 1 (unknown: \notacommand)"]


def test_parameter_count_is_read_from_the_safetensors_header(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "model.safetensors"
    save_file({"w": np.zeros((3, 4), np.float32), "b": np.zeros(5, np.float32)}, str(path))
    assert model_parameter_count(path) == 3 * 4 + 5


def _png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _notebook(title: str, executed: bool, params: dict) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    md = f"# {title}\n\nNext: [02](02_train_ar.ipynb), code in [flow](../unixlib/model/flow.py)."
    code = nbformat.v4.new_code_cell("draw()")
    if executed:
        code.execution_count = 1
        code.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text="step 150/300 loss 0.50\n"),
            nbformat.v4.new_output("stream", name="stdout", text="step 300/300 loss 0.12\n"),
            nbformat.v4.new_output("stream", name="stderr", text="\n"),  # a bar's last newline
            nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "f"}),
        ]
    log = nbformat.v4.new_code_cell("train()")
    if executed:  # a training log: a bar on stderr between step lines on stdout
        log.execution_count = 2
        for step in range(1, 12):
            log.outputs.append(
                nbformat.v4.new_output("stream", name="stderr", text=f"\rbar {step}")
            )
            log.outputs.append(
                nbformat.v4.new_output("stream", name="stdout", text=f"step {step}\n")
            )
    nb.cells = [nbformat.v4.new_markdown_cell(md), code, log]
    nb.metadata["papermill"] = {"parameters": params}
    return nb


@pytest.fixture
def run(tmp_path):
    """A small made-up run: 01 executed, 02 prepared but not executed, one table, a manifest."""
    run_dir, figures = tmp_path / "papermill_runs" / "demo", tmp_path / "figures" / "demo"
    run_dir.mkdir(parents=True)
    figures.mkdir(parents=True)
    params = {"seed": 3, "source": "synth", "image_size": 64, "n_test": 200, "run_dir": "x"}
    nbformat.write(_notebook("01 · Clean", True, params), run_dir / "01_clean_data.ipynb")
    nbformat.write(_notebook("02 · Train", False, {"seed": 3}), run_dir / "02_train_ar.ipynb")
    (figures / "table2_understanding.md").write_text(TABLE)
    Image.new("RGB", (60, 20), "white").save(figures / "table2_understanding.png")
    manifest = {
        "profile": "smoke",
        "git": {"commit": "abc1234def", "dirty": False},
        "wall_s": 65.2,
        "device": {"platform": "Linux-x", "python": "3.11.7", "cpu_count": 2, "cuda": False},
        "packages": {"torch": "2.13.0+cpu"},
        "notebooks": [{"notebook": "01_clean_data", "status": "ok", "wall_s": 65.0}],
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir, figures, tmp_path / "book"


def test_only_executed_notebooks_are_chapters(run):
    run_dir, figures, _ = run
    facts = read_run("demo", run_dir, figures)
    assert [p.stem for p in facts.notebooks] == ["01_clean_data"]
    assert facts.params["01_clean_data"]["seed"] == 3
    assert not is_executed(nbformat.read(run_dir / "02_train_ar.ipynb", as_version=4))


def test_build_writes_every_page_in_series_order(run):
    run_dir, figures, out = run
    index = book.build("demo", run_dir, figures, out)
    assert index == out / "index.html"
    pages = {p.name: p.read_text() for p in out.glob("*.html")}
    assert set(pages) == {
        "index.html",
        "01_clean_data.html",
        "results.html",
        "reproducibility.html",
    }
    toc = re.search(r'<nav[^>]*class="book-toc"[^>]*>(.*?)</nav>', pages["index.html"], re.S)[1]
    order = [toc.index(h) for h in ("index.html", "01_clean_data", "results", "reproducibility")]
    assert order == sorted(order)
    assert "Not executed in this run, so not in the book: 02_train_ar" in pages["index.html"]
    chapter = pages["01_clean_data.html"]
    assert "data:image/png;base64," in chapter
    # the cell's two prints are one block; the blank stderr line is gone
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in chapter
    assert re.search(r"<pre>step 150/300 loss 0.50\nstep 300/300 loss 0.12\n</pre>", chapter)
    # the 22 streams of the log cell are one block, each piece on its own line
    log = re.search(r"<pre>bar 1\nstep 1\n(.*?)</pre>", chapter, re.S)
    assert log and log[1].endswith("bar 11\nstep 11\n")
    # 02 has no chapter in this book: the link to it becomes text, like the repository link
    assert 'title="not part of the book: 02_train_ar.ipynb"' in chapter
    assert 'title="not part of the book: ../unixlib/model/flow.py"' in chapter
    for name, text in pages.items():
        assert "<script" not in text, name
    assert (out / "figures" / "table2_understanding.png").is_file()


def test_results_put_the_papers_rows_below_this_runs_with_the_scale(run):
    run_dir, figures, out = run
    book.build("demo", run_dir, figures, out)
    results = (out / "results.html").read_text()
    heading = results.index("Table 2: understanding")
    assert "demo scale: SynthCXR 64 px" in results[heading : heading + 300]
    this_run, paper = results.index("<strong>This run"), results.index("<strong>The paper")
    assert this_run < results.index("UniX (this run)") < paper < results.index("LLaVA-Rad")
    assert 'src="figures/table2_understanding.png"' in results
    assert "<math" in results and "about 3.2 points" in results  # the standard error


def test_reproducibility_answers_come_from_the_manifest(run):
    run_dir, figures, out = run
    book.build("demo", run_dir, figures, out)
    page = (out / "reproducibility.html").read_text()
    assert "abc1234def" in page and "make reproduce PROFILE=smoke" in page
    assert "0:01:05" in page  # 01's 65.0 s
    assert "GPU numbers: not measured" in page and "MIMIC-CXR: not used" in page
    assert "the ablations (notebook 06) did not run" in page
    assert "<strong><code>seed=3</code></strong>" in page  # differs from the default 0
    assert "<code>image_size=64</code>" in page


def test_a_run_without_executed_notebooks_is_a_one_line_error(tmp_path, capsys):
    empty = tmp_path / "papermill_runs" / "none"
    empty.mkdir(parents=True)
    nbformat.write(_notebook("01", False, {}), empty / "01_clean_data.ipynb")
    assert book.main(["--profile", "none", "--run-dir", str(empty), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("error: ") and "has no executed notebooks" in err
    assert "make reproduce PROFILE=none" in err


def test_a_rebuild_cleans_its_own_book_and_refuses_other_folders(run, tmp_path):
    run_dir, figures, out = run
    book.build("demo", run_dir, figures, out)
    (out / "stale.html").write_text("old page")
    book.build("demo", run_dir, figures, out)
    assert not (out / "stale.html").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="holds no book"):
        book.build("demo", run_dir, figures, other)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_nbval_executed_keeps_the_outputs_nbval_saw(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell("print('hi')"), nbformat.v4.new_code_cell("6 * 7")]
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    cmd = [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider"]
    cmd += ["-p", "tests.nbval_executed", "--rootdir", str(tmp_path), str(path)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    saved = nbformat.read(path, as_version=4)
    nbformat.validate(saved)
    first, second = saved.cells
    assert (first.execution_count, second.execution_count) == (1, 2)
    assert first.outputs[0].text == "hi\n"
    assert second.outputs[0].output_type == "execute_result"
    assert second.outputs[0].data["text/plain"] == "42"
    assert is_executed(saved)
