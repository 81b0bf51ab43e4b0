"""The book's results chapter: every table the run regenerated, its rows beside the paper's.

Read from ``figures/<run>/``: each ``*.md`` table (written by ``viz.tables.save_table``: a
caption, then one Markdown table whose ``source`` column says where a row comes from). A table
with rows quoted from the paper is split in two blocks, this run's rows (with their baselines)
first and the paper's below, under a line saying that the two are not comparable; a figure of
the same name (``<stem>.png``) follows its table. Each heading states the run's scale.
"""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from unixlib.experiments.book_facts import RunFacts, ablation_scale, scale_line, shown_path
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL

FIGURES = "figures"  # the book's copy of the figures the chapter shows

PAPER_BLOCK = (
    "**The paper** (quoted from arXiv 2601.11522: MIMIC-CXR, the full-scale ~1.5B-parameter "
    "model, CheXbert labels and RadDino features; not comparable with the rows above)"
)


@dataclass
class MdTable:
    """A table file: its caption (text before the table), header, rows of cells, and any text
    after the table (``notes``)."""

    caption: str
    header: list[str]
    rows: list[list[str]]
    notes: str = ""


def _cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [c.strip() for c in re.split(r"(?<!\\)\|", inner)]


def parse_table(text: str) -> MdTable | None:
    """Parse a caption + one GitHub-flavoured table; ``None`` when the file holds no table or
    more than one (it is then shown as written)."""
    lines = text.splitlines()
    starts = [
        i
        for i, line in enumerate(lines)
        if line.lstrip().startswith("|") and (i == 0 or not lines[i - 1].lstrip().startswith("|"))
    ]
    if len(starts) != 1:
        return None
    i = starts[0]
    j = i
    while j < len(lines) and lines[j].lstrip().startswith("|"):
        j += 1
    block = lines[i:j]
    if len(block) < 2 or not re.fullmatch(r"\|?[\s:|-]+\|?", block[1].strip()):
        return None
    header = _cells(block[0])
    rows = [_cells(line) for line in block[2:]]
    return MdTable("\n".join(lines[:i]).strip(), header, rows, "\n".join(lines[j:]).strip())


def table_markdown(header: list[str], rows: list[list[str]]) -> str:
    """Rows of cells back to a Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def split_paper_rows(table: MdTable) -> tuple[list[list[str]], list[list[str]]]:
    """(this run's rows, the paper's rows), by the ``source`` column (all rows are this run's
    when the table has none)."""
    if SOURCE_COL not in table.header:
        return table.rows, []
    at = table.header.index(SOURCE_COL)
    ours = [r for r in table.rows if r[at] != FROM_PAPER]
    return ours, [r for r in table.rows if r[at] == FROM_PAPER]


def _kind(stem: str) -> tuple[int, str]:
    """Section order: the paper's numbered tables, other measurements, ablations, the rest."""
    if m := re.fullmatch(r"table(\d+)_.*", stem):
        return 0, f"{int(m.group(1)):03d}"
    if stem.startswith("table"):
        return 1, stem
    if stem.startswith("ablation"):
        return 2, stem
    return 3, stem


def ablation(stem: str) -> bool:
    """Tables measured by notebook 06's ablation arms, at their own (shorter) scale; Table 5
    (joint optimisation) is one of them."""
    return stem.startswith(("ablation", "table5_"))


SECTIONS = (
    "The paper's tables, regenerated",
    "Further measurements",
    "Ablations (notebook 06)",
    "Data and training checks",
)


def title_of(stem: str) -> str:
    """``table2_understanding`` -> ``Table 2: understanding``; ``ablation_repa`` -> ``Ablation:
    repa``."""
    if m := re.fullmatch(r"table(\d+)_(.*)", stem):
        return f"Table {m.group(1)}: {m.group(2).replace('_', ' ')}"
    if m := re.fullmatch(r"(table|ablation)_(.*)", stem):
        return f"{m.group(1).capitalize()}: {m.group(2).replace('_', ' ')}"
    return stem.replace("_", " ").capitalize()


def table_section(
    stem: str, text: str, scale: str, figure: str | None, paper_note: bool = True
) -> str:
    """One table's section: heading with the scale, caption, this run's block, the paper's
    (or, with ``paper_note``, a line saying that the paper has no row of it)."""
    parts = [f"### {title_of(stem)} <small>— {scale}</small>"]
    table = parse_table(text)
    if table is None:
        parts.append(text.strip())
    else:
        if table.caption:
            parts.append(table.caption)
        ours, paper = split_paper_rows(table)
        parts.append("**This run**\n\n" + table_markdown(table.header, ours))
        if paper:
            parts.append(PAPER_BLOCK + "\n\n" + table_markdown(table.header, paper))
        elif paper_note:
            parts.append("*No row of this table is quoted from the paper.*")
        if table.notes:
            parts.append(table.notes)
    if figure:
        parts.append(f"![{title_of(stem)}]({figure})")
    return "\n\n".join(parts)


def standard_error_points(n: int, p: float = 0.7) -> float:
    """Standard error, in percentage points, of a proportion ``p`` measured on ``n`` items."""
    return 100 * math.sqrt(p * (1 - p) / n)


def reading_section(run: RunFacts) -> str:
    """'What the numbers do and do not say', from the run's own scale and choices."""
    n_test = run.splits.get("test") or run.param("01_clean_data", "n_test") or 0
    labeler = (
        "CheXbert (local weights)"
        if run.param("05_evaluate", "chexbert_checkpoint")
        else "the project's rule labeler (not CheXbert)"
    )
    encoder = (
        "RadDino (local weights)"
        if run.param("05_evaluate", "raddino_dir")
        else "a reference CNN trained on this run's train split (not RadDino)"
    )
    seeds = run.param("06_ablations", "seeds") or []
    lines = [
        f"## What the {run.name} numbers do and do not say",
        f"**Scale.** {scale_line(run)}. The paper trains a ~1.5B-parameter model per branch on "
        "163,344 MIMIC-CXR image-report pairs at 256-512 px, for 3,840 + 75,000 + 5,000 steps "
        "of batch 256 on 8 GPUs.",
        "**They do say** that every stage of the pipeline runs end to end on this data and "
        "trains (the losses fall in notebooks 02-04), and how the model compares with trivial "
        "baselines computed in the same run on the same pairs (most frequent report, random "
        "and retrieved reports; real validation images as the floor of FD, shuffled reports "
        "and unconditional samples for generation). A model that does not beat a baseline has "
        "learned nothing the baseline lacks, at this scale.",
        "**They do not say** how UniX performs, or whether the paper's numbers reproduce. Their "
        f"values are not comparable with the paper's rows: other data, F1 from {labeler}, "
        f"FD/KD and alignment from {encoder}, a model thousands of times smaller.",
    ]
    if run.param("01_clean_data", "source") == "synth":
        lines.append(
            "**SynthCXR is easier than real reports.** Its reports are written in the labeler's "
            "own vocabulary, so label-based F1 measures how well findings are read from the "
            "image, with no phrasing left to misread."
        )
    if n_test:
        se = standard_error_points(int(n_test))
        lines.append(
            f"**Noise.** With {int(n_test)} test images, a score near 70% has a standard error "
            f"of about {se:.1f} points ($\\sqrt{{p(1-p)/n}}$ with $p = 0.7$, $n = {int(n_test)}$): "
            f"differences under ~{2 * se:.0f} points are within noise."
        )
    if seeds:
        lines.append(
            f"**Seeds.** The ablations ran {len(seeds)} seed{'s' if len(seeds) != 1 else ''} "
            f"per arm ({ablation_scale(run)})"
            + (
                ": no variance across seeds is measured, so a verdict that an arm is better or "
                "worse is a direction, not a significant difference."
                if len(seeds) < 2
                else "; the verdicts table says whether each difference exceeds the seed spread."
            )
        )
    return "\n\n".join(lines)


def results_sections(run: RunFacts, out_dir: Path) -> list[str]:
    """The chapter as Markdown sections; copies the figures it shows to ``out_dir/figures``."""
    scale = f"{run.name} scale: {scale_line(run)}"
    tables = sorted(run.figures_dir.glob("*.md"), key=lambda p: _kind(p.stem))
    sections = [
        f"# Results of the {run.name} run\n\n"
        f"Every table this run regenerated (`{shown_path(run.figures_dir)}/*.md`), each under a "
        "heading that states the run's scale. Where the paper reports the same table, its "
        "rows follow this run's in a block of their own: they were measured at full scale on "
        "MIMIC-CXR and are references, not targets this scale could meet.",
        reading_section(run),
    ]
    if not tables:
        sections.append(f"*{run.figures_dir} holds no tables: the run wrote none.*")
    (out_dir / FIGURES).mkdir(parents=True, exist_ok=True)
    current = None
    for path in tables:
        kind = _kind(path.stem)[0]
        if kind != current:
            sections.append(f"## {SECTIONS[kind]}")
            current = kind
        figure = None
        if (png := path.with_suffix(".png")).is_file():
            shutil.copy2(png, out_dir / FIGURES / png.name)
            figure = f"{FIGURES}/{png.name}"
        heading_scale = (
            "; ".join(filter(None, [scale, ablation_scale(run)])) if ablation(path.stem) else scale
        )
        text = path.read_text()
        sections.append(table_section(path.stem, text, heading_scale, figure, kind < 3))
    figures = sorted(run.figures_dir.glob("fig[0-9]*.png"))
    if figures:
        sections.append("## The paper's figures, regenerated")
        for png in figures:
            shutil.copy2(png, out_dir / FIGURES / png.name)
            heading = f"### {title_of(png.stem)} <small>— {scale}</small>"
            sections.append(f"{heading}\n\n![{png.stem}]({FIGURES}/{png.name})")
    return sections
