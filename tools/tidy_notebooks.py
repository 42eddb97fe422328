#!/usr/bin/env python3
"""Fold the chapters' "checks behind the text" cells in the book (standard library only).

A check cell is a code cell whose first line is a ``# Checks ...`` comment, or one that calls
``claim(...)`` (the helper that states a quantitative sentence of the text as an assertion).
Such cells stay in the notebooks and run under strict nbval; in the HTML, Jupyter Book folds
the source of a cell tagged ``hide-input`` under a "Show code cell source" toggle and keeps its
output visible.

This script adds that tag to every check cell that lacks it and changes nothing else: no
execution, outputs and metadata kept, and the file written the way nbformat writes it (sorted
keys, indent 1, no ASCII escaping, a trailing newline). Running it twice changes nothing.

Usage, from the repository root::

    python3 dev.py tidy-notebooks            # tag the check cells of chapters/*.ipynb
    python3 dev.py tidy-notebooks --check    # only report untagged check cells (exit status 1)
    python3 tools/tidy_notebooks.py NOTEBOOK.ipynb ...
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = "chapters/*.ipynb"
TAG = "hide-input"
# the first non-blank line is a "# Checks ..." comment
CHECKS_COMMENT = re.compile(r"#\s*Checks\b")
# a call of the claim helper, bare or through a module: claim(...), checks.claim(...)
CLAIM_CALL = re.compile(r"(?<![\w])claim\s*\(")


def cell_source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_check_cell(cell):
    """Whether a notebook cell (a dict of nbformat 4) is one of the checks behind the text."""
    if cell.get("cell_type") != "code":
        return False
    source = cell_source(cell)
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    if lines and CHECKS_COMMENT.match(lines[0]):
        return True
    code = "\n".join(line for line in lines if not line.startswith("#"))
    return bool(CLAIM_CALL.search(code))


def untagged_check_cells(notebook):
    """Indices of the check cells of a notebook (a dict) that lack the hide-input tag."""
    return [
        index for index, cell in enumerate(notebook.get("cells", []))
        if is_check_cell(cell) and TAG not in cell.get("metadata", {}).get("tags", [])
    ]


def tag_check_cells(notebook):
    """Add the hide-input tag to every untagged check cell, in place; return their indices."""
    indices = untagged_check_cells(notebook)
    for index in indices:
        metadata = notebook["cells"][index].setdefault("metadata", {})
        metadata["tags"] = list(metadata.get("tags", [])) + [TAG]
    return indices


def dumps(notebook):
    """The notebook as nbformat writes it (nbformat.v4.nbjson plus nbformat.write's newline)."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def tidy(path, check_only=False):
    """Tag the check cells of one notebook file; return the indices of the cells (to be) tagged.

    The file is rewritten only when a tag is added, so an already tidy notebook keeps its bytes.
    """
    path = Path(path)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    if check_only:
        return untagged_check_cells(notebook)
    indices = tag_check_cells(notebook)
    if indices:
        path.write_text(dumps(notebook), encoding="utf-8")
    return indices


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    check_only = "--check" in argv
    paths = [Path(arg) for arg in argv if arg != "--check"] or sorted(ROOT.glob(CHAPTERS))
    missing = 0
    for path in paths:
        indices = tidy(path, check_only=check_only)
        missing += len(indices)
        if indices:
            verb = "untagged check cells" if check_only else "tagged hide-input"
            cells = ", ".join(str(i) for i in indices)
            print(f"{path}: {verb}: cell{'s' if len(indices) > 1 else ''} {cells}")
    if check_only and missing:
        print(f"{missing} check cell(s) without the {TAG!r} tag: run `python3 dev.py tidy-notebooks`")
        return 1
    if not missing:
        print(f"every check cell of {len(paths)} notebook(s) is tagged {TAG!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
