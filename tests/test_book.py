"""Build the book from the stored notebook outputs and check what a reader gets."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
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
    pages = toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    # the toc lists the introduction and chapter 1 at least
    assert "intro" in pages and "chapters/01_train_ann" in pages
    missing = [page for page in pages if not (html_dir / f"{page}.html").exists()]
    assert not missing, f"no HTML page for {missing}"


def test_chapter_pages_show_outputs_without_logs(html_dir):
    pages = [p for p in toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())) if p.startswith("chapters/")]
    for page in pages:
        html = (html_dir / f"{page}.html").read_text(encoding="utf-8")
        # stored outputs are shown (the book is built without executing anything)
        assert 'class="cell_output' in html, f"{page}: no cell outputs in the HTML"
        # and none of them is a TensorFlow log line or a stderr stream
        assert not TF_LOG.search(html), f"{page}: TensorFlow log line in the HTML"
        assert "output stderr" not in html, f"{page}: stderr output in the HTML"


def test_chapter1_shows_accuracy_and_plots(html_dir):
    html = (html_dir / "chapters" / "01_train_ann.html").read_text(encoding="utf-8")
    # the measured accuracy is printed and both figures are embedded as image files that exist
    assert re.search(r"ANN test accuracy: \d\d\.\d%", html)
    images = re.findall(r'<img [^>]*src="([^"]+\.png)"', html)
    assert len(images) >= 2
    for src in images:
        assert (html_dir / "chapters" / src).resolve().exists(), src
