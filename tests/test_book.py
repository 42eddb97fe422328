"""Build the book from the stored notebook outputs and check what a reader gets.

The browser checks open every page in headless Chromium (Debian's ``chromium`` package, which
``.ci/run`` installs). Where no Chromium exists they are skipped, except in CI where they must run.
Screenshots of every page are kept under ``artifacts/screenshots/``.
"""
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
TF_LOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+")


def toc_files(node):
    """Every 'file' entry of a _toc.yml tree, in order."""
    if isinstance(node, dict):
        found = [node["root"]] if "root" in node else []
        found += [node["file"]] if "file" in node else []
        for value in node.values():
            found += toc_files(value) if isinstance(value, (list, dict)) else []
        return found
    if isinstance(node, list):
        return [name for item in node for name in toc_files(item)]
    return []


def toc_pages():
    return toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(ROOT), "--path-output", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "_build" / "html"


def test_every_toc_page_has_html(html_dir):
    pages = toc_pages()
    # the toc lists the introduction and chapter 1 at least
    assert "intro" in pages and "chapters/01_train_ann" in pages
    missing = [page for page in pages if not (html_dir / f"{page}.html").exists()]
    assert not missing, f"no HTML page for {missing}"


def test_chapter_pages_show_outputs_without_logs(html_dir):
    pages = [p for p in toc_pages() if p.startswith("chapters/")]
    for page in pages:
        html = (html_dir / f"{page}.html").read_text(encoding="utf-8")
        # stored outputs are shown (the book is built without executing anything)
        assert 'class="cell_output' in html, f"{page}: no cell outputs in the HTML"
        # and none of them is a TensorFlow log line or a stderr stream
        assert not TF_LOG.search(html), f"{page}: TensorFlow log line in the HTML"
        assert "output stderr" not in html, f"{page}: stderr output in the HTML"
        # a reader can download the chapter's notebook from its page
        notebook = f"_sources/{page}.ipynb"
        assert notebook in html and (html_dir / notebook).exists(), f"{page}: no notebook download"


def test_chapter1_shows_accuracy_and_plots(html_dir):
    html = (html_dir / "chapters" / "01_train_ann.html").read_text(encoding="utf-8")
    # the measured accuracy is printed and both figures are embedded as image files that exist
    assert re.search(r"ANN test accuracy: \d\d\.\d ?%", html)
    images = re.findall(r'<img [^>]*src="([^"]+\.png)"', html)
    assert len(images) >= 2
    for src in images:
        assert (html_dir / "chapters" / src).resolve().exists(), src


# ---------------------------------------------------------------------------------------------
# In a browser


def find_chromium():
    for candidate in (os.environ.get("SNNLIB_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def book_url(html_dir):
    """Serve the built book on a free localhost port for the duration of the module."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    chromium = find_chromium()
    if chromium is None:
        message = "no Chromium found: install Debian's chromium package (or set SNNLIB_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message + "; in CI the browser test must run (.ci/run installs it)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield launched
        launched.close()


def open_page(browser, url):
    """Load a page; return it with its console errors and any request that left localhost."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, external = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(str(err)))

    def keep_local(route):
        # the book must work offline: anything fetched from elsewhere is recorded and refused
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", keep_local)
    page.goto(url, wait_until="networkidle")
    return page, errors, external


@pytest.mark.parametrize("page_name", toc_pages())
def test_page_in_browser(browser, book_url, page_name):
    page, errors, external = open_page(browser, f"{book_url}/{page_name}.html")
    has_math = page.evaluate("document.querySelectorAll('.math').length") > 0
    if has_math:
        # MathJax (served by the book itself) has typeset every formula, without errors
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
        n_math = page.evaluate("document.querySelectorAll('.math').length")
        n_typeset = page.evaluate("document.querySelectorAll('.math mjx-container').length")
        assert n_typeset == n_math, f"{page_name}: {n_typeset} of {n_math} formulas typeset"
        assert page.evaluate("document.querySelectorAll('mjx-merror').length") == 0
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / (page_name.replace("/", "__") + ".png")), full_page=True)
    title = page.title()
    page.close()
    # the page loaded with a title, every image loaded, nothing failed in the console
    assert title and "404" not in title
    assert not broken, f"{page_name}: images that did not load: {broken}"
    assert not external, f"{page_name}: requests outside the book (fail offline): {external}"
    assert not errors, f"{page_name}: console errors: {errors}"


def test_navigation_lists_every_page(browser, book_url):
    page, _, _ = open_page(browser, f"{book_url}/intro.html")
    links = page.evaluate(
        "Array.from(document.querySelectorAll('nav.bd-docs-nav a')).map(a => a.getAttribute('href'))"
    )
    page.close()
    # every chapter in _toc.yml is reachable from the navigation sidebar
    for name in toc_pages():
        if name != "intro":
            assert any(link and link.split("#")[0].endswith(f"{name}.html") for link in links), (name, links)
