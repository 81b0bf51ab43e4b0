"""``make book``: a run's executed notebook series as a static site, ``book/<run>/``.

The pages, in reading order: an overview (the README's opening and its table of the series,
with this run's scale), the executed notebooks 01..06 of ``papermill_runs/<run>/`` as they ran
(nothing is executed again), a results chapter (every table of ``figures/<run>/`` beside the
paper's rows: ``book_results``) and a reproducibility page (``book_repro``). nbconvert renders
every page (``book_render``); math is typeset to MathML when the book is built and no page
loads anything from the network, so the book reads offline, from ``file://`` or a server::

    python -m unixlib.experiments.book --profile smoke      # -> book/smoke/index.html
    python -m http.server -d book/smoke                      # or open index.html
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat

from unixlib import config
from unixlib.experiments.book_facts import RunFacts, read_run, scale_line, shown_path
from unixlib.experiments.book_render import (
    STATIC,
    Entry,
    markdown_notebook,
    render_page,
    write_static,
)
from unixlib.experiments.book_repro import reproducibility_sections
from unixlib.experiments.book_results import FIGURES, results_sections

BOOK_DIR = config.REPO_ROOT / "book"
README = config.REPO_ROOT / "README.md"


def chapter_title(nb: nbformat.NotebookNode, stem: str) -> str:
    """The first Markdown heading of a notebook (its title cell), else its file stem."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if m := re.match(r"#+\s+(.*)", line.strip()):
                    return m.group(1).strip()
    return stem


def readme_overview(text: str) -> str:
    """The README's opening (up to its first ``##`` section) and its ``## The series``
    section (without subsections)."""
    sections = re.split(r"(?m)^(?=##\s)", text)
    parts = [sections[0].strip()]
    for section in sections[1:]:
        if section.startswith("## The series"):
            parts.append(re.split(r"(?m)^###\s", section)[0].strip())
    return "\n\n".join(parts)


def overview_sections(run: RunFacts, toc: list[Entry]) -> list[str]:
    """The overview page: the README's overview and a guide to this book."""
    readme = readme_overview(README.read_text()) if README.is_file() else "# UniX, reproduced"
    ran = {p.stem for p in run.notebooks}
    missing = [p.stem for p in config.notebooks() if p.stem not in ran]
    guide = [
        f"## This book: the {run.name} run",
        f"The executed notebooks of `{shown_path(run.run_dir)}/`, as they ran, then the results and "
        f"the reproducibility checklist. Scale: {scale_line(run)}.",
        "\n".join(f"{i}. [{e.title}]({e.href})" for i, e in enumerate(toc[1:], start=1)),
    ]
    if missing:
        guide.append(f"Not executed in this run, so not in the book: {', '.join(missing)}.")
    guide.append(
        "The book renders what the run wrote and never executes a notebook: rebuild it after "
        "a new run (the reproducibility page says how to rerun this one)."
    )
    return [readme, "\n\n".join(guide)]


STAMP = ".unixlib-book"  # marks a folder this module built, which a rebuild may clean


def _prepare(out_dir: Path) -> None:
    """Make ``out_dir`` ready: new or empty, or an earlier book (its pages, figures and static
    files are removed, nothing else). Any other folder is refused, so that ``--out`` never
    deletes what the book did not write (``figures/`` of the repository, say)."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / STAMP).is_file():
        raise FileExistsError(f"{out_dir} is not empty and holds no book: choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    for page in out_dir.glob("*.html"):
        page.unlink()
    for sub in (FIGURES, STATIC):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    (out_dir / STAMP).write_text("written by python -m unixlib.experiments.book\n")


def build(
    name: str,
    run_dir: Path | None = None,
    figures_dir: Path | None = None,
    out_dir: Path | None = None,
) -> Path:
    """Build the book of run ``name`` (default folders ``papermill_runs/<name>``,
    ``figures/<name>``, ``book/<name>``); returns the path of its ``index.html``.

    Raises ``FileNotFoundError`` when the run folder has no executed notebook, and
    ``FileExistsError`` when ``out_dir`` holds files but no earlier book.
    """
    run_dir = run_dir or config.REPO_ROOT / "papermill_runs" / name
    figures_dir = figures_dir or config.REPO_ROOT / "figures" / name
    out_dir = out_dir or BOOK_DIR / name
    run = read_run(name, run_dir, figures_dir)
    _prepare(out_dir)
    write_static(out_dir)

    notebooks = {p.stem: nbformat.read(p, as_version=4) for p in run.notebooks}
    toc = [Entry("index.html", "Overview", "page")]
    toc += [
        Entry(f"{stem}.html", chapter_title(nb, stem), "notebook", stem)
        for stem, nb in notebooks.items()
    ]
    toc += [
        Entry("results.html", "Results", "page"),
        Entry("reproducibility.html", "Reproducibility", "page"),
    ]
    pages = {
        "index.html": markdown_notebook(overview_sections(run, toc)),
        **{f"{stem}.html": nb for stem, nb in notebooks.items()},
        "results.html": markdown_notebook(results_sections(run, out_dir)),
        "reproducibility.html": markdown_notebook(reproducibility_sections(run)),
    }
    book = {
        "title": f"UniX reproduced · {name}",
        "scale": scale_line(run),
        "toc": toc,
        "source_dir": config.NOTEBOOK_DIR,
    }
    for entry in toc:
        page, unknown = render_page(pages[entry.href], entry, book, out_dir)
        (out_dir / entry.href).write_text(page)
        for formula in unknown:
            print(f"book: {entry.href}: kept as TeX source: {formula}", file=sys.stderr)
    return out_dir / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m unixlib.experiments.book",
        description="Render a run's executed notebooks, results and reproducibility checklist "
        "as a static site (book/PROFILE/index.html). Executes nothing.",
    )
    parser.add_argument("--profile", default="smoke", help="the run's name (default: smoke)")
    parser.add_argument("--run-dir", type=Path, help="default: papermill_runs/PROFILE")
    parser.add_argument("--figures-dir", type=Path, help="default: figures/PROFILE")
    parser.add_argument("--out", type=Path, help="default: book/PROFILE")
    args = parser.parse_args(argv)
    try:
        index = build(args.profile, args.run_dir, args.figures_dir, args.out)
    except (FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    shown = shown_path(index.parent)
    print(f"book: {shown}/index.html (open it, or: python -m http.server -d {shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
