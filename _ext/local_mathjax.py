"""Sphinx extension: serve MathJax 3 from the book itself, so math renders offline.

Jupyter Book loads MathJax from a CDN, which offline classrooms cannot reach (readers then see raw
TeX). The ``django-static-mathjax`` package (pinned in requirements.lock) ships MathJax's files;
this copies the self-contained SVG build and its TeX extensions into the book's static folder and
points Sphinx's ``mathjax_path`` at it. Without that package the CDN stays in use, with a warning.
"""
import shutil
from importlib import metadata
from pathlib import Path

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
MATHJAX_ES5 = "mathjax/static/mathjax/es5"
FILES = ("tex-svg.js", "input/tex/extensions")


def _mathjax_es5_dir():
    try:
        dist = metadata.distribution("django-static-mathjax")
    except metadata.PackageNotFoundError:
        return None
    folder = Path(dist.locate_file(MATHJAX_ES5))
    return folder if (folder / FILES[0]).exists() else None


def _vendor_mathjax(app):
    source = _mathjax_es5_dir()
    if source is None:
        LOGGER.warning("django-static-mathjax is not installed: MathJax will load from its CDN")
        return
    static_root = Path(app.doctreedir).parent / "local_mathjax_static"
    target = static_root / "mathjax"
    for name in FILES:
        if (target / name).exists():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name)
        else:
            shutil.copy2(source / name, target / name)
    app.config.html_static_path.append(str(static_root))
    app.config.mathjax_path = "mathjax/tex-svg.js"


def setup(app):
    app.connect("builder-inited", _vendor_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
