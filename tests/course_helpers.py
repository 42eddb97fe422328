"""Notebooks for the course tests, built from the committed student versions and the solutions.

``student(key)`` is the notebook a student downloads; ``solved(key)`` the same with the
instructor's solutions put in (taken from the autograder version otter assign makes). Attacks
are student (or solved) notebooks with a few cells added or replaced.
"""
import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import nbformat

from course import build

A1, A2, A3 = "01_integrate_and_fire", "02_percentile_normalization", "03_spike_budget"
STUB = "    raise NotImplementedError("
PLACEHOLDER = "_Type your answer here, replacing this text._"


def student(key):
    return nbformat.read(build.BOOK_DIR / f"{key}.ipynb", as_version=4)


@functools.cache
def built():
    """``python3 dev.py assignments build`` output, built once into a temporary folder."""
    out = Path(tempfile.mkdtemp(prefix="course-test-build-"))
    atexit.register(shutil.rmtree, out, True)
    build.build(output=out, book_dir=None)
    return out


def solved(key, except_cells=()):
    """The student notebook with the solution code cells (same ids) of the autograder version."""
    nb = student(key)
    autograder = nbformat.read(built() / "autograder" / key / f"{key}.ipynb", as_version=4)
    solutions = {c.id: c for c in autograder.cells if c.cell_type == "code"}
    for cell in nb.cells:
        if cell.cell_type == "code" and STUB in cell.source and cell.id not in except_cells:
            cell.source = solutions[cell.id].source
        if cell.cell_type == "markdown" and PLACEHOLDER in cell.source:
            cell.source = "A short synapse averages the spikes of a few steps, " * 3
    return nb


def filled(nb, text):
    """The written answer (otter's placeholder cell) replaced by ``text``."""
    (cell,) = [c for c in nb.cells if c.cell_type == "markdown" and PLACEHOLDER in c.source]
    cell.source = text
    return nb


def cheap(nb):
    """Assignment 3 without its TensorFlow setup and simulations (faster to grade); for
    attacks that only need the answer cells."""
    cell_with(nb, "N_STEPS, DT, TARGET, BUDGET").source = "import numpy as np\n\nimport snnlib"
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and "evaluate(" in c.source)]
    return nb


def cell_with(nb, text):
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and text in c.source]
    return cell


def answer(nb, function, body):
    """Replace the stub of ``def function(`` with ``body`` (indented by the caller or not)."""
    cell = cell_with(nb, f"def {function}(")
    lines = cell.source.splitlines()
    (i,) = [n for n, line in enumerate(lines) if line.startswith(STUB)]
    body = [("    " + line) if line.strip() else line for line in body.strip("\n").splitlines()]
    cell.source = "\n".join(lines[:i] + body + lines[i + 1:])
    return nb


def edit(nb, old, new):
    """Replace text in the one code cell that contains it."""
    cell = cell_with(nb, old)
    cell.source = cell.source.replace(old, new)
    return nb


def add_cell(nb, source, index=None):
    """A code cell at ``index`` (default: the end)."""
    cell = nbformat.v4.new_code_cell(source)
    nb.cells.insert(len(nb.cells) if index is None else index, cell)
    return nb


def write(nb, folder, name):
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def write_json(data, folder, name):
    path = Path(folder) / name
    path.write_text(json.dumps(data))
    return path
