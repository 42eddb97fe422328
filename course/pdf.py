"""A PDF of a notebook's manually graded answers, for the instructor who reads them.

otter export makes this PDF with LaTeX (``xelatex``) or ``wkhtmltopdf``; neither is installed
here, so this uses otter's own cell filter (the ``<!-- BEGIN/END QUESTION -->`` regions otter
assign writes around manual questions) with nbconvert's HTML and Debian's Chromium through
Playwright, the same browser the book's tests use. The submission is not trusted: raw HTML in its
Markdown is stripped (Markdown formatting stays), its outputs are dropped, and the page is
rendered with JavaScript disabled and every network request refused.
"""
import os
import shutil
from pathlib import Path

import nbformat

from course import submissions


def find_chromium():
    for candidate in (os.environ.get("SNNLIB_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def filtered_html(path):
    """The manual questions of a notebook as sanitized HTML (otter's filter)."""
    import bleach
    from nbconvert import HTMLExporter
    from otter.export.exporters.base_exporter import BaseExporter

    nb = nbformat.reads(submissions.read_bytes(path).decode("utf-8"), as_version=4)
    nb = BaseExporter.filter_cells(nb, pagebreaks=False)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = bleach.clean(cell.source, tags=[], strip=True)
        cell.pop("outputs", None)
        if cell.cell_type == "code":
            cell.outputs = []
        cell.metadata = {}
    exporter = HTMLExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(nb)
    return html


def manual_answers_pdf(path, target):
    """Write the PDF of ``path``'s manual answers to ``target``; returns ``target``."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found: install Debian's chromium (or set SNNLIB_CHROMIUM)")
    html = filtered_html(path)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(java_script_enabled=False, offline=True)
            page = context.new_page()
            page.route("**/*", lambda route: route.abort())
            page.set_default_timeout(60_000)
            page.set_content(html, wait_until="domcontentloaded")
            page.pdf(path=str(target), format="A4", print_background=True)
        finally:
            browser.close()
    return target
