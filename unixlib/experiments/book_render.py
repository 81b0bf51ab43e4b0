"""One page of the book: a notebook (executed, or built from Markdown) rendered by nbconvert.

nbconvert's ``lab`` template gives each page JupyterLab's look (cells, prompts, outputs); a small
template on top of it adds the table of contents and the previous/next links, and drops the stock
template's network references (require.js, the widget manager, mermaid and MathJax are CDN links
there; no output of the series needs the first three, and math is typeset to MathML when the
book is built: ``book_math``). A page loads nothing but its own style sheet.

Links between the series' notebooks (``02_train_ar.ipynb``) become links between chapters; a
relative link to anything else (a file of the repository) has no page in the book and becomes
plain text that names its target, so the book holds no broken link.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import nbformat
from jinja2 import DictLoader
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

from unixlib.experiments.book_math import BookExporter

STATIC = "_static"  # the book's folder of shared files (its style sheet)

# The lab template with the book's frame. ``resources.book`` carries the page's place in the book.
TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{% block html_head_js_requirejs %}{% endblock html_head_js_requirejs %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block data_widget_view %}{% endblock data_widget_view %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block extra_css %}
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{{ resources.book.static }}/book.css">
{% endblock extra_css %}
{% block body_header %}
<body class="jp-Notebook book-page" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light"
      data-book-kind="{{ resources.book.kind }}">
<nav class="book-toc" aria-label="Contents">
  <a class="book-title" href="index.html">{{ resources.book.title | e }}</a>
  <ol>
  {%- for entry in resources.book.toc %}
    <li{% if entry.href == resources.book.href %} class="book-current" aria-current="page"{% endif %}>
      <a href="{{ entry.href }}">{{ entry.title | e }}</a></li>
  {%- endfor %}
  </ol>
  <p class="book-scale">{{ resources.book.scale | e }}</p>
</nav>
<main class="book-main">
{% endblock body_header %}
{% block body_footer %}
<nav class="book-pager" aria-label="Previous and next">
  {%- if resources.book.prev %}<a class="book-prev" href="{{ resources.book.prev.href }}">&larr; {{ resources.book.prev.title | e }}</a>{% endif %}
  {%- if resources.book.next %}<a class="book-next" href="{{ resources.book.next.href }}">{{ resources.book.next.title | e }} &rarr;</a>{% endif %}
</nav>
</main>
</body>
{% endblock body_footer %}
"""

CSS = """\
/* The book's frame around nbconvert's lab page: a contents column and a readable text width. */
/* The contents column's colour runs the page's whole height (the column itself is fixed). */
html, body.book-page { margin: 0; padding: 0; min-height: 100%;
  background: linear-gradient(to right, #f5f6f8 249px, #dde 249px, #dde 250px, #fff 250px); }
.book-toc { position: fixed; top: 0; left: 0; bottom: 0; width: 250px; overflow-y: auto;
  padding: 20px 16px; box-sizing: border-box;
  font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  font-size: 14px; }
.book-toc .book-title { display: block; font-weight: 600; font-size: 15px; color: #222;
  text-decoration: none; margin-bottom: 12px; }
.book-toc ol { list-style: none; margin: 0; padding: 0; }
.book-toc li a { display: block; padding: 5px 8px; border-radius: 4px; color: #234;
  text-decoration: none; }
.book-toc li a:hover { background: #e6e9ef; }
.book-toc li.book-current a { background: #dbe4f3; font-weight: 600; }
.book-toc .book-scale { margin-top: 16px; color: #555; font-size: 12px; line-height: 1.4; }
.book-main { margin-left: 250px; padding: 24px 40px 48px; max-width: 1100px; box-sizing: border-box; }
.book-pager { display: flex; justify-content: space-between; margin-top: 40px; padding-top: 16px;
  border-top: 1px solid #dde; font-family: var(--jp-ui-font-family); }
.book-pager a { text-decoration: none; }
math { font-family: "STIX Two Math", "Latin Modern Math", "DejaVu Math TeX Gyre", math;
  font-size: 1.1em; }
math[display="block"] { margin: 0.6em 0; }
.book-offsite { font-family: var(--jp-code-font-family); font-size: 0.95em; }
/* Long logs scroll inside their cell instead of filling pages. */
.jp-OutputArea-output pre { max-height: 32em; overflow: auto; }
.jp-RenderedImage img, .jp-RenderedMarkdown img { max-width: 100%; height: auto; }
.jp-RenderedMarkdown table { display: block; overflow-x: auto; max-width: 100%; }
h3 small { font-size: 0.7em; font-weight: normal; color: #555; }
@media (max-width: 900px) {
  html, body.book-page { background: #fff; }
  .book-toc { position: static; width: auto; background: #f5f6f8; border-bottom: 1px solid #dde; }
  .book-main { margin-left: 0; padding: 16px; }
}
"""


# A cell with more stream outputs than this is a log: its stdout and stderr read as one block.
LOG_OUTPUTS = 20


def _join_log(outputs: list) -> list:
    """Consecutive streams as one stdout block, each piece on its own lines (a progress bar's
    last state ends without a newline)."""
    joined: list = []
    for out in outputs:
        if out.output_type == "stream":
            text = out.text if out.text.endswith("\n") else out.text + "\n"
            if joined and joined[-1].output_type == "stream":
                joined[-1].text += text
                continue
            out.name, out.text = "stdout", text
        joined.append(out)
    return joined


class _Streams(CoalesceStreamsPreprocessor):
    """nbconvert's stream merging (consecutive prints of one stream become one block, carriage
    returns applied), then a stream left blank dropped (a progress bar's closing newline); a
    cell with more than ``LOG_OUTPUTS`` streams (a training log, its bar on stderr between its
    step lines on stdout) becomes one block that scrolls."""

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        if "outputs" in cell:
            outputs = [o for o in cell.outputs if o.output_type != "stream" or o.text.strip()]
            if sum(o.output_type == "stream" for o in outputs) > LOG_OUTPUTS:
                outputs = _join_log(outputs)
            cell.outputs = outputs
        return cell, resources


@dataclass(frozen=True)
class Entry:
    """A page of the book: its file name (``href``), its title, what it is (``kind``:
    ``notebook`` for an executed notebook of the series, ``page`` for a generated one) and, for
    a notebook, its stem (``02_train_ar``)."""

    href: str
    title: str
    kind: str
    stem: str = ""


def _exporter(embed_images: bool) -> BookExporter:
    exporter = BookExporter(
        template_name="lab",
        extra_loaders=[DictLoader({"book.html.j2": TEMPLATE})],
        template_file="book.html.j2",
        embed_images=embed_images,
    )
    # A cell's consecutive prints (a log line per step, a progress bar per update) become one
    # block, which scrolls past 32 lines (the style sheet), with carriage returns applied.
    exporter.register_preprocessor(_Streams(), enabled=True)
    return exporter


def write_static(out_dir: Path) -> None:
    """Write the book's style sheet, ``_static/book.css``."""
    static = out_dir / STATIC
    static.mkdir(parents=True, exist_ok=True)
    (static / "book.css").write_text(CSS)


def markdown_notebook(sections: list[str]) -> nbformat.NotebookNode:
    """A notebook of Markdown cells (one per section), so that generated pages go through the
    same renderer as the series."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text) for text in sections]
    return nb


_ANCHOR = re.compile(r"<a\s([^>]*?)href=\"([^\"]*)\"([^>]*)>(.*?)</a>", re.S)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def rewrite_links(page: str, toc: list[Entry], out_dir: Path) -> str:
    """Point links at the series' notebooks to their chapters and turn other relative links
    that leave the book (neither a page of ``toc`` nor a file under ``out_dir``) into text
    naming their target."""
    chapters = {e.stem: e.href for e in toc if e.stem}
    pages = {e.href for e in toc}

    def fix(match: re.Match[str]) -> str:
        before, href, after, text = match.groups()
        if not href or href.startswith("#") or _SCHEME.match(href):
            return match.group(0)
        path, _, fragment = html.unescape(href).partition("#")
        name = PurePosixPath(path).name
        target = chapters.get(PurePosixPath(name).stem) if name.endswith(".ipynb") else None
        if target is not None:
            new = target + (f"#{fragment}" if fragment else "")
            return f'<a {before}href="{html.escape(new)}"{after}>{text}</a>'
        inside = ".." not in PurePosixPath(path).parts and (out_dir / path).is_file()
        if path in pages or inside:
            return match.group(0)
        title = html.escape(f"not part of the book: {html.unescape(href)}", quote=True)
        return f'<span class="book-offsite" title="{title}">{text}</span>'

    return _ANCHOR.sub(fix, page)


def render_page(
    nb: nbformat.NotebookNode, entry: Entry, book: dict[str, Any], out_dir: Path
) -> tuple[str, list[str]]:
    """One page as HTML text, and the formulas kept as TeX source (see ``book_math``).

    ``book`` holds what every page shares: ``title``, ``scale`` (a line under the contents),
    ``toc`` (the list of :class:`Entry`, in reading order) and ``source_dir``: a notebook's
    Markdown images given as paths relative to it become data URIs (a notebook's page stands
    alone), while a generated page's images are files of the book, in ``out_dir``.
    """
    toc: list[Entry] = book["toc"]
    at = toc.index(entry)
    resources = {
        "metadata": {"name": f"{entry.title} · {book['title']}", "path": str(book["source_dir"])},
        "book": {
            **book,
            "href": entry.href,
            "kind": entry.kind,
            "static": STATIC,
            "prev": toc[at - 1] if at > 0 else None,
            "next": toc[at + 1] if at + 1 < len(toc) else None,
        },
    }
    exporter = _exporter(embed_images=entry.kind == "notebook")
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return rewrite_links(body, toc, out_dir), exporter.unknown_math
