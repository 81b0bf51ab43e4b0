"""Tables: every table is written three ways (CSV for machines, Markdown for the README and
notebooks, LaTeX for papers) from one DataFrame.

Two conventions every table follows:

* **Intervals.** A column ``X`` with companions ``X_low`` and ``X_high`` is a number with its
  interval (a bootstrap interval over studies, see ``unixlib.eval.uncertainty``). The CSV keeps
  the three columns; Markdown and LaTeX show one cell ``value [low, high]``.
* **Quoted rows.** Rows quoted from the paper (``quoted``) are never mixed with this run's:
  Markdown and LaTeX show them as a separate table under a heading that says what they are
  (``QUOTED_HEADING`` by default: measured on MIMIC-CXR at full scale, not comparable in value
  to the rows above); the CSV holds both, told apart by the ``source`` column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# Column that says where a row comes from: this run, or quoted from the paper (PAPER.md).
SOURCE_COL = "source"
FROM_PAPER, THIS_RUN = "paper (quoted)", "this run"
QUOTED_HEADING = (
    "The paper (quoted; MIMIC-CXR, full scale, its own encoders and labeler): "
    "not comparable in value to the rows above"
)
LOW, HIGH = "_low", "_high"


def interval_columns(frame: pd.DataFrame) -> list[str]:
    """The columns ``X`` that have both ``X_low`` and ``X_high`` beside them."""
    return [c for c in frame.columns if f"{c}{LOW}" in frame.columns and f"{c}{HIGH}" in frame]


def _cell(v: object, floatfmt: str) -> str:
    if v is pd.NA or v is None:  # a missing value of a nullable column (e.g. Int64)
        return ""
    if isinstance(v, float):
        return "" if pd.isna(v) else format(v, floatfmt)
    return str(v)


def display_frame(frame: pd.DataFrame, floatfmt: str = ".3f") -> pd.DataFrame:
    """The frame as strings, each interval column as one ``value [low, high]`` cell (its
    ``_low`` / ``_high`` companions dropped): what Markdown, LaTeX and notebooks show."""
    out = pd.DataFrame(index=frame.index)
    paired = set(interval_columns(frame))
    for c in frame.columns:
        if c.endswith((LOW, HIGH)) and c.rsplit("_", 1)[0] in paired:
            continue
        cells = [_cell(v, floatfmt) for v in frame[c]]
        if c in paired:
            lows = [_cell(v, floatfmt) for v in frame[f"{c}{LOW}"]]
            highs = [_cell(v, floatfmt) for v in frame[f"{c}{HIGH}"]]
            cells = [
                f"{v} [{lo}, {hi}]" if v and lo and hi else v
                for v, lo, hi in zip(cells, lows, highs, strict=True)
            ]
        out[str(c)] = cells
    return out


def _markdown(frame: pd.DataFrame, floatfmt: str) -> str:
    """A GitHub-flavoured Markdown table without the optional `tabulate` dependency."""
    shown = display_frame(frame, floatfmt)
    cols = list(shown.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in shown.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


def _latex(frame: pd.DataFrame, floatfmt: str) -> str:
    return display_frame(frame, floatfmt).to_latex(index=False, na_rep="")


def save_table(
    frame: pd.DataFrame,
    out_dir: Path,
    stem: str,
    caption: str = "",
    floatfmt: str = ".3f",
    quoted: pd.DataFrame | None = None,
    quoted_heading: str = QUOTED_HEADING,
) -> dict[str, Path]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` into ``out_dir``; return the paths.

    ``frame``: this run's rows; ``quoted``: the paper's rows, shown as a separate block (see
    the module docstring). The Markdown file starts with the caption (if any) as a paragraph;
    the LaTeX file is a ``table`` environment with the caption and ``label{tab:<stem>}``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "tex")}
    both = frame if quoted is None else pd.concat([frame, quoted], ignore_index=True)
    both.to_csv(paths["csv"], index=False)
    md = (f"{caption}\n\n" if caption else "") + _markdown(frame, floatfmt)
    latex = _latex(frame, floatfmt)
    if quoted is not None and len(quoted):
        md += f"\n{quoted_heading}:\n\n" + _markdown(quoted, floatfmt)
        heading = quoted_heading.replace("%", r"\%")
        latex += f"\\par\\medskip {heading}:\\par\\smallskip\n" + _latex(quoted, floatfmt)
    paths["md"].write_text(md)
    caption_tex = caption.replace("_", r"\_").replace("%", r"\%")
    paths["tex"].write_text(
        "\\begin{table}[t]\n\\centering\n"
        + (f"\\caption{{{caption_tex}}}\n" if caption else "")
        + f"\\label{{tab:{stem}}}\n{latex}\\end{{table}}\n"
    )
    return paths
