"""Build the book from the stored notebook outputs and check what a reader gets.

The browser checks open every page in headless Chromium (Debian's ``chromium`` package, which
``.ci/run`` installs; Playwright drives it, no browser is downloaded) at desktop (1280 x 900) and
phone (390 x 844) size. Where no Chromium exists they are skipped when pytest is called
directly, and fail under ``python3 dev.py test`` (which refuses to start without it) and in CI. Screenshots of every page at both sizes are kept under ``artifacts/screenshots/``.

What a page must satisfy in the browser: every formula typeset, every image loaded, no request
outside the book, no console error, and the layout checks of ``tests/layout_checks.js``: nothing
wider than the page column unless it scrolls inside a box that fits the column, no content cut
off by a box that hides overflow, no overlapping lines of text, no horizontal scrolling of the
page itself. In the chapters, the check cells' sources are folded (hide-input).

The API reference (reference/*.md, autodoc over the numpydoc docstrings) documents every name of
``snnlib.__all__`` and every module of the subpackages, builds without warnings, and passes the
same browser checks as every other page.
"""
import ast
import functools
import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
LAYOUT_CHECKS = (Path(__file__).parent / "layout_checks.js").read_text()
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
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
    (out / "build-stderr.txt").write_text(result.stderr)  # Sphinx's warnings, for the tests below
    return out / "_build" / "html"


def test_every_toc_page_has_html(html_dir):
    pages = toc_pages()
    # the toc lists the introduction and chapter 1 at least
    assert "intro" in pages and "chapters/01_train_ann" in pages
    missing = [page for page in pages if not (html_dir / f"{page}.html").exists()]
    assert not missing, f"no HTML page for {missing}"


def test_every_page_states_the_licences(html_dir):
    # the footer (html.extra_footer in _config.yml) names both licences on every page
    pages = toc_pages()
    for page in pages:
        text = (html_dir / f"{page}.html").read_text(encoding="utf-8")
        assert "snnlib-licence" in text and "CC-BY-4.0" in text and "MIT" in text, page


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


def _tidy_notebooks():
    spec = importlib.util.spec_from_file_location("tidy_notebooks", ROOT / "tools" / "tidy_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_cells_are_folded_in_html(html_dir):
    from bs4 import BeautifulSoup

    tidy = _tidy_notebooks()
    for notebook in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        expected = sum(tidy.is_check_cell(cell) for cell in cells)
        page = html_dir / "chapters" / f"{notebook.stem}.html"
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        found = 0
        for cell in soup.select("div.cell"):
            source = cell.select_one("div.cell_input pre")
            fake = {"cell_type": "code", "source": source.get_text() if source else ""}
            if not tidy.is_check_cell(fake):
                continue
            found += 1
            first_line = fake["source"].strip().splitlines()[0][:60]
            # the cell carries the tag, its source is inside the collapsed "Show code cell source"
            # toggle, and its output (if any) stays outside the toggle, visible
            assert "tag_hide-input" in cell["class"], f"{page.name}: check cell not tagged: {first_line}"
            details = source.find_parent("details")
            assert details is not None and "hide" in details["class"], f"{page.name}: not folded: {first_line}"
            assert not details.has_attr("open"), f"{page.name}: folded but open: {first_line}"
            for output in cell.select("div.cell_output"):
                assert output.find_parent("details") is None, f"{page.name}: output folded: {first_line}"
        # every check cell of the notebook is on the page, and all were found as check cells
        assert found == expected, f"{page.name}: {found} check cells in the HTML, {expected} in the notebook"


def test_intro_links_the_chapters_and_the_repository(html_dir):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup((html_dir / "intro.html").read_text(encoding="utf-8"), "html.parser")
    heading = next(h for h in soup.select("h2") if "map of the book" in h.get_text())
    items = heading.find_next("ol").select("li")
    chapters = [page for page in toc_pages() if page.startswith("chapters/")]
    assert len(items) == len(chapters)
    for item, chapter in zip(items, chapters, strict=True):
        # each item of the map starts with a link to its chapter, and the link works
        link = item.find("a")
        assert link is not None and link.get("href", "").split("#")[0] == f"{chapter}.html", item
        assert (html_dir / link["href"].split("#")[0]).exists()
    # every internal link of the intro resolves to a page of the built book
    for link in soup.select("article a.reference.internal[href]"):
        target = link["href"].split("#")[0]
        assert not target or (html_dir / target).exists(), link["href"]
    # "in a clone of the repository" links the repository address set in _config.yml
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    running = next(h for h in soup.select("h2") if "Running it yourself" in h.get_text()).find_parent("section")
    assert running.select_one(f'a[href="{url}"]') is not None
    # and the repository button in the page header points there too
    assert soup.select_one(f'.article-header-buttons a[href="{url}"]') is not None


def test_chapters_have_a_binder_launch_button(html_dir):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    owner_repo = config["repository"]["url"].removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    for page in [p for p in toc_pages() if p.startswith("chapters/")]:
        html = (html_dir / f"{page}.html").read_text(encoding="utf-8")
        # a plain link to mybinder.org that opens this chapter's notebook (nothing loads from there)
        link = f"https://mybinder.org/v2/gh/{owner_repo}/{branch}?urlpath=lab/tree/{page}.ipynb"
        assert f'href="{link}"' in html, f"{page}: no Binder launch link {link}"


def _public_names():
    """``snnlib.__all__``, read from the source (importing snnlib would import TensorFlow)."""
    tree = ast.parse((ROOT / "snnlib" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("snnlib/__init__.py has no __all__")


def _function_source(module_path, name):
    """The parameters and the docstring's first line of a function, read from its module's source."""
    tree = ast.parse((ROOT / module_path).read_text(encoding="utf-8"))
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    args = func.args
    params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return params, ast.get_docstring(func).splitlines()[0]


def _description(soup, target):
    """The <dd> of the object documented with this id (an autodoc entry)."""
    term = soup.find(id=target)
    assert term is not None and term.name == "dt", f"{target} is not documented"
    return term.find_next_sibling("dd")


#: The API reference: its page, and one page per subpackage (module by module), in _toc.yml.
API_PAGE = "reference/api"
API_SUBPACKAGES = ("convert", "normalize", "sim", "analysis", "experiments", "ann", "nengo", "network")


def test_api_reference_documents_the_public_api(html_dir):
    from bs4 import BeautifulSoup

    pages = toc_pages()
    assert API_PAGE in pages and all(f"reference/{name}" in pages for name in API_SUBPACKAGES)
    soup = BeautifulSoup((html_dir / f"{API_PAGE}.html").read_text(encoding="utf-8"), "html.parser")
    article = soup.select_one("article")
    text = article.get_text(" ")
    # every directive was run: no MyST or reStructuredText source left in the page
    for leftover in ("```", "{eval-rst}", ".. auto", ":py:obj:", ":members:"):
        assert leftover not in text, f"{API_PAGE}: {leftover!r} in the page"
    # every public name is documented under its public name (snnlib.convert, not where it lives)
    missing = [name for name in _public_names() if soup.find(id=f"snnlib.{name}") is None]
    assert not missing, f"{API_PAGE}: not documented: {missing}"
    # and listed in a summary table that links to its entry
    summary_links = {a["href"] for a in article.select("table.autosummary a[href]")}
    assert {f"#snnlib.{name}" for name in _public_names()} <= summary_links
    # the key functions show their docstring: its first line and a Parameters section that
    # names every parameter of the signature
    for name, module in (("convert", "snnlib/convert/pipeline.py"),
                         ("simulate", "snnlib/sim/simulator.py"),
                         ("normalize", "snnlib/normalize/rules.py")):
        params, first_line = _function_source(module, name)
        described = _description(soup, f"snnlib.{name}")
        assert " ".join(first_line.split()) in " ".join(described.get_text(" ").split()), name
        fields = {dt.get_text(strip=True): dt.find_next_sibling("dd")
                  for dt in described.select(":scope > dl.field-list > dt")}
        assert "Parameters:" in fields, f"snnlib.{name}: no Parameters section"
        documented = {strong.get_text() for strong in fields["Parameters:"].select("strong")}
        assert set(params) <= documented, f"snnlib.{name}: undocumented {set(params) - documented}"
    # a constant shows its own comment, not the docstring of its type
    assert "time step" in _description(soup, "snnlib.DT").get_text()


def test_api_subpackage_pages_document_every_module(html_dir):
    from bs4 import BeautifulSoup

    for package in API_SUBPACKAGES:
        page = f"reference/{package}"
        soup = BeautifulSoup((html_dir / f"{page}.html").read_text(encoding="utf-8"), "html.parser")
        folder = ROOT / "snnlib" / package
        modules = sorted(
            "snnlib." + ".".join(path.relative_to(ROOT / "snnlib").with_suffix("").parts).removesuffix(".__init__")
            for path in folder.rglob("*.py")
            if not any(part.startswith("_") for part in path.relative_to(folder).parts[:-1])
            and (path.name == "__init__.py" or not path.name.startswith("_"))
        )
        modules.remove(f"snnlib.{package}")
        # each module has its section (autodoc's module target), with its objects documented
        missing = [m for m in modules if soup.find(id=f"module-{m}") is None]
        assert not missing, f"{page}: no section for {missing}"
        assert len(soup.select("article dl.py")) >= len(modules), page


def test_api_reference_builds_without_warnings(html_dir):
    log = (html_dir.parents[1] / "build-stderr.txt").read_text()
    # autodoc, autosummary and docutils report broken docstrings (and duplicate or ambiguous
    # targets) as warnings; the reference has none
    warnings = [line for line in log.splitlines() if re.search(r"WARNING|ERROR|CRITICAL", line)
                and re.search(r"snnlib|reference/|docstring|autodoc|autosummary|Summarised", line)]
    assert not warnings, "\n".join(warnings[:30])


# ---------------------------------------------------------------------------------------------
# In a browser


def find_chromium():
    """dev.py's search (the README's test command refuses to start without what it finds)."""
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    return dev.find_chromium()


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
        message = ("no Chromium found: install it with `sudo apt-get install -y chromium` (or set "
                   "SNNLIB_CHROMIUM)")
        if os.environ.get("CI") or os.environ.get("SNNLIB_REQUIRE_BROWSER"):
            pytest.fail(message + "; python3 dev.py test and CI run the browser tests")
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


def open_page(browser, url, viewport=None):
    """Load a page; return it with its console errors and any request that left localhost."""
    page = browser.new_page(viewport=viewport or VIEWPORTS["desktop"])
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


def layout_problems(page, width):
    """Run tests/layout_checks.js in the page; return its findings as readable lines."""
    result = page.evaluate(LAYOUT_CHECKS, width)
    if "error" in result:
        return [result["error"]]
    problems = []
    if result["pageOverflow"]:
        found = result["pageOverflow"]
        problems.append(f"the page scrolls sideways: {found['scrollWidth']} px wide in a {width} px window")
    column = result["column"]
    for item in result["overflows"]:
        problems.append(f"wider than the column ({column['left']}-{column['right']} px): {item['element']} "
                        f"spans {item['box']['left']}-{item['box']['right']} px")
    for item in result["clipped"]:
        problems.append(f"content cut off: {item['element']} is {item['width']} px wide, its content "
                        f"{item['contentWidth']} px ({item['hiddenContent']})")
    for item in result["slivers"]:
        problems.append(f"a scroll bar for {item['extra']} px: {item['element']}")
    for item in result["overlaps"]:
        problems.append(f"overlapping text ({item['dx']} x {item['dy']} px): {item['a']} and {item['b']}")
    return problems


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("page_name", toc_pages())
def test_page_in_browser(browser, book_url, page_name, viewport):
    size = VIEWPORTS[viewport]
    page, errors, external = open_page(browser, f"{book_url}/{page_name}.html", size)
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
    # measured after MathJax, which changes the width of every formula
    problems = layout_problems(page, size["width"])
    # a folded check cell shows its toggle, not its source
    unfolded = page.evaluate(
        """() => [...document.querySelectorAll("div.cell.tag_hide-input div.cell_input")]
               .filter(el => el.checkVisibility()).length"""
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{page_name.replace('/', '__')}--{viewport}.png"
    page.screenshot(path=str(shot), full_page=True)
    title = page.title()
    page.close()
    # the page loaded with a title, every image loaded, nothing failed in the console
    assert title and "404" not in title
    assert not broken, f"{page_name}: images that did not load: {broken}"
    assert not external, f"{page_name}: requests outside the book (fail offline): {external}"
    assert not errors, f"{page_name}: console errors: {errors}"
    # everything fits the page column at this width (see the screenshot)
    assert not problems, f"{page_name} at {viewport} width ({shot.name}):\n" + "\n".join(problems)
    assert unfolded == 0, f"{page_name}: {unfolded} hide-input cells show their source"


def test_layout_checks_find_what_they_should(browser):
    """The layout checks flag each kind of problem on a small page built to have them."""
    page = browser.new_page(viewport=VIEWPORTS["phone"])
    page.set_content("""
      <style>body { margin: 0 } main { width: 390px } article { width: 300px; padding: 0 10px }
             .scroll { overflow-x: auto } .hide { overflow: hidden; width: 200px }
             .abs { position: relative; height: 2em } .abs span { position: absolute; left: 0 }</style>
      <main><article class="bd-article">
        <div class="scroll"><table id="ok"><tr><td style="min-width: 600px">scrolls inside</td></tr></table></div>
        <table id="wide"><tr><td style="min-width: 450px">wider than the column</td></tr></table>
        <div class="hide" id="cut"><pre>a line that is much longer than the box that holds it</pre></div>
        <pre style="overflow: visible">a line of code that runs out of its block and the column</pre>
        <div class="abs"><span>one text</span><span>two text</span></div>
        <div class="scroll" style="width: 100px"><div style="width: 102px">x</div></div>
      </article></main>""")
    result = page.evaluate(LAYOUT_CHECKS, VIEWPORTS["phone"]["width"])
    page.close()
    # the wide table and the line of code overflow (the table in a scroll container does not),
    # and they widen the page
    overflows = [item["element"] for item in result["overflows"]]
    assert len(overflows) == 2 and overflows[0].startswith("table in article"), overflows
    assert overflows[1].startswith('text "a line of code') and result["overflows"][1]["box"]["right"] > 310
    assert result["pageOverflow"] and result["pageOverflow"]["scrollWidth"] > 390
    # the box that hides overflow cuts off its line
    assert len(result["clipped"]) == 1 and result["clipped"][0]["element"].startswith("div.hide")
    # the box that scrolls for 2 px shows a needless scroll bar
    assert [item["extra"] for item in result["slivers"]] == [2]
    # the two absolutely placed spans overlap
    assert len(result["overlaps"]) == 1 and "one text" in result["overlaps"][0]["a"]


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
