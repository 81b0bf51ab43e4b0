"""Math in the book, typeset when the book is built: LaTeX -> MathML, no script, no network.

nbconvert leaves ``$...$`` in the page for MathJax to typeset in the browser, from a CDN by
default. The book converts each formula of a Markdown cell to MathML with ``latex2mathml``
instead, which browsers draw natively (MathML Core); the pages then load no script at all and
read the same offline, from ``file://`` or a server. A formula that uses a command
``latex2mathml`` does not know is kept as its TeX source and reported (``unknown``), never
dropped.
"""

from __future__ import annotations

import html
import re

from jinja2 import pass_context
from latex2mathml.converter import convert
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

# latex2mathml writes a command it cannot translate as an identifier holding its name.
_UNKNOWN = re.compile(r"<mi>(\\[A-Za-z]+)</mi>")


def to_mathml(tex: str, display: bool, unknown: list[str]) -> str:
    """``tex`` as a ``<math>`` element (``display``: a block of its own), or, when it uses an
    unknown command, as its source in ``<code class="book-tex">`` with the formula appended to
    ``unknown``."""
    mathml = convert(tex.strip(), display="block" if display else "inline")
    missing = _UNKNOWN.findall(mathml)
    if missing:
        unknown.append(f"{tex.strip()} (unknown: {', '.join(sorted(set(missing)))})")
        delim = "$$" if display else "$"
        return f'<code class="book-tex">{html.escape(delim + tex + delim)}</code>'
    return mathml


class MathMLRenderer(IPythonRenderer):
    """nbconvert's Markdown renderer with formulas as MathML (``unknown`` collects the formulas
    kept as source)."""

    def __init__(self, *args, unknown: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unknown = unknown

    def block_math(self, body: str) -> str:
        return to_mathml(body, True, self.unknown)

    def inline_math(self, body: str) -> str:
        return to_mathml(body, False, self.unknown)

    def latex_environment(self, name: str, body: str) -> str:
        return to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", True, self.unknown)


class BookExporter(HTMLExporter):
    """``HTMLExporter`` whose Markdown filter typesets math as MathML; the formulas it could not
    translate are in ``self.unknown_math`` after an export."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.unknown_math: list[str] = []

    @pass_context
    def markdown2html(self, context, source: str) -> str:
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False,
            attachments=cell.get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            unknown=self.unknown_math,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)
