"""The book of the test run in a real browser: every chapter opens, shows its outputs, and
loads nothing broken.

Builds the book of ``papermill_runs/test`` (the notebooks ``make test`` executes under nbval,
kept with their outputs by ``tests/nbval_executed.py``; figures in ``figures/test``) into a
temporary folder, serves it from 127.0.0.1, and walks it with Debian's ``chromium`` driven by
Playwright (the system executable; nothing downloads a browser): the index, then every chapter
through the table of contents. A page fails on a console error or uncaught exception, a request
that fails or leaves 127.0.0.1, an image that did not load (naturalWidth 0), an internal link
to a missing page or anchor, or a notebook chapter without outputs. One full-page screenshot per
chapter at a laptop's viewport (1366x768) goes to ``test-artifacts/book/`` (gitignored).

``make test`` runs this file after its nbval step; run alone before that step has ever run,
it skips, saying so.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.conftest import REPO_ROOT
from unixlib.experiments import book
from unixlib.experiments.book_facts import executed_notebooks

CHROMIUM = Path("/usr/bin/chromium")
TEST_RUN = REPO_ROOT / "papermill_runs" / "test"
TEST_FIGURES = REPO_ROOT / "figures" / "test"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "book"
VIEWPORT = {"width": 1366, "height": 768}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.executed,  # reads the notebooks make test executed (run after its nbval step)
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is absent (/usr/bin/chromium); `apt-get install -y chromium`",
    ),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The book of the test run, built into a temporary folder."""
    if not (TEST_RUN.is_dir() and executed_notebooks(TEST_RUN)):
        pytest.skip(
            "papermill_runs/test has no executed notebooks: `make test` writes them in its "
            "nbval step, then runs this test"
        )
    out = tmp_path_factory.mktemp("book")
    book.build("test", TEST_RUN, TEST_FIGURES, out)
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def served(built):
    """The book served over HTTP on 127.0.0.1 (a free port); yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(built))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_pages_reference_no_script_or_style_from_the_network(built):
    for page in sorted(built.glob("*.html")):
        text = page.read_text()
        remote = re.findall(r"<(?:script|link|img)\b[^>]*(?:src|href)=\"(https?:[^\"]*)\"", text)
        assert not remote, f"{page.name} loads {remote[:3]}"
        # math is MathML, typeset when the book was built: no page needs a script file
        assert not re.search(r"<script\b[^>]*\bsrc=", text), f"{page.name} loads a script"


def _internal_link_problems(page, base: str, built: Path) -> list[str]:
    """Links of the page that point inside the book at a missing file or anchor."""
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    here = urlsplit(page.url).path
    problems = []
    for href in links:
        url = urlsplit(href)
        if f"{url.scheme}://{url.netloc}" != base:
            continue  # an external link: not part of the book
        target = built / (unquote(url.path).lstrip("/") or "index.html")
        # A fragment names an id as written or percent-decoded (what a browser tries).
        ids = {url.fragment, unquote(url.fragment)}
        if not target.is_file():
            problems.append(f"{href}: no such file")
        elif url.fragment and url.path != here:
            text = target.read_text()
            if not any(f'id="{i}"' in text for i in ids):
                problems.append(f"{href}: no anchor #{url.fragment}")
        elif url.fragment:
            found = page.evaluate("ids => ids.some(i => document.getElementById(i))", list(ids))
            if not found:
                problems.append(f"{href}: no anchor #{url.fragment}")
    return problems


def _check_page(page, entry_kind: str, base: str, built: Path) -> None:
    broken = page.eval_on_selector_all(
        "img", "els => els.filter(e => !e.complete || e.naturalWidth === 0).map(e => e.src)"
    )
    assert not broken, f"{page.url}: images that did not load: {[b[:80] for b in broken]}"
    links = _internal_link_problems(page, base, built)
    assert not links, f"{page.url}: broken internal links {links[:5]}"
    kind = page.get_attribute("body", "data-book-kind")
    assert kind == entry_kind, f"{page.url}: a {kind} page where the contents say {entry_kind}"
    if kind == "notebook":
        outputs = page.locator(".jp-OutputArea-output").count()
        assert outputs > 0, f"{page.url}: a chapter without outputs"
    else:
        assert page.locator(".jp-RenderedMarkdown").count() > 0, f"{page.url}: an empty page"


def test_every_chapter_opens_from_the_contents_and_shows_its_outputs(served, built):
    from playwright.sync_api import sync_playwright

    expected = [f"{p.stem}.html" for p in executed_notebooks(TEST_RUN)]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:100]}"))
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith((served, "data:"))
                    else problems.append(f"left the book: {r.url[:100]}")
                ),
            )
            page.goto(f"{served}/index.html", wait_until="load")
            toc = page.eval_on_selector_all(
                "nav.book-toc li a",
                "els => els.map(e => [e.getAttribute('href'), e.textContent.trim()])",
            )
            hrefs = [href for href, _ in toc]
            assert hrefs == ["index.html", *expected, "results.html", "reproducibility.html"]
            kinds = {href: ("notebook" if href in expected else "page") for href in hrefs}
            for i, href in enumerate(hrefs):
                if i > 0:  # walk through the contents column, as a reader does
                    with page.expect_navigation(wait_until="load"):
                        page.click(f"nav.book-toc li a[href='{href}']")
                assert page.url == f"{served}/{href}"
                current = page.get_attribute("nav.book-toc li.book-current a", "href")
                assert current == href, f"the contents mark {current} on {href}"
                _check_page(page, kinds[href], served, built)
                shot = ARTIFACTS / f"{i:02d}_{Path(href).stem}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                assert not problems, f"{href}: {problems}"
            # The results chapter typesets its formula (MathML, drawn by the browser).
            page.click("nav.book-toc li a[href='results.html']")
            page.wait_for_load_state("load")
            math = page.locator("math").first
            assert math.bounding_box() and math.bounding_box()["height"] > 5
        finally:
            browser.close()
    assert not problems, problems
