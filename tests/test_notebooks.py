"""Static rules for the chapters' stored notebooks (strict nbval runs them; this reads them).

- Stored in order, from a fresh kernel, without errors, TensorFlow log lines or addresses.
- A cell whose output nbval may not compare (``# NBVAL_IGNORE_OUTPUT``: training logs, numbers
  whose last digits depend on the CPU's summation order) must be *backed*: the next code cell
  is a check cell (``claim(...)`` or ``assert``) that reads at least one name the ignored cell
  assigns. A blanket ignore would let the prose drift from the results.
- No chapter writes into the library's shipped weights.
"""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
IGNORE = "NBVAL_IGNORE_OUTPUT"
TF_LOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+")
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]{6,}")


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(notebook):
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def parse(text):
    """AST of a cell, with IPython magics and shell lines blanked out."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()]
    return ast.parse("\n".join(lines))


def assigned_names(tree):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def read_names(tree):
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)}


def is_check(tree):
    """A check cell: asserts, or calls claim(...)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "claim":
                return True
    return False


def is_ignored(cell):
    """nbval's own rule: a comment line that is exactly the marker."""
    return any(line.strip().startswith("#") and line.strip().lstrip("#").strip() == IGNORE
               for line in source(cell).splitlines())


def unbacked_ignored_cells(notebook):
    """Indices (among code cells) of ignored cells without a backing check cell."""
    cells = code_cells(notebook)
    problems = []
    for i, cell in enumerate(cells):
        if not is_ignored(cell):
            continue
        names = assigned_names(parse(source(cell)))
        following = cells[i + 1] if i + 1 < len(cells) else None
        tree = parse(source(following)) if following is not None else None
        if tree is None or not is_check(tree) or not (names & read_names(tree)):
            problems.append(i)
    return problems


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_stored_in_order_without_errors_or_logs(path):
    cells = code_cells(load(path))
    counts = [cell["execution_count"] for cell in cells if source(cell).strip()]
    # run top to bottom in one fresh kernel: execution counts 1, 2, 3, ...
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name} code cell {index}: error stored"
            text = "".join(output.get("text", "")) + "".join(
                output.get("data", {}).get("text/plain", ""))
            assert not TF_LOG.search(text), f"{path.name} code cell {index}: TensorFlow log line"
            assert not ADDRESS.search(text), f"{path.name} code cell {index}: memory address"
            if output["output_type"] == "stream":
                assert output["name"] == "stdout", f"{path.name} code cell {index}: stderr stored"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_ignored_outputs_are_backed_by_checks(path):
    notebook = load(path)
    problems = unbacked_ignored_cells(notebook)
    assert not problems, (f"{path.name}: code cells {problems} are {IGNORE} but the next code "
                          "cell does not check (claim/assert) anything they compute")


def test_ignored_cells_are_counted():
    """The rule above can fail: an ignored cell followed by prose-only code is caught."""
    notebook = {"cells": [
        {"cell_type": "code", "source": [f"# {IGNORE}\n", "accuracy = 0.97\n", "print(accuracy)"]},
        {"cell_type": "code", "source": ["print('no check here')"]},
        {"cell_type": "code", "source": [f"# {IGNORE}\n", "rate = 3.0"]},
        {"cell_type": "code", "source": ["claim(rate > 1, 'the rate is above 1 Hz')"]},
        {"cell_type": "code", "source": [f"# {IGNORE}\n", "latency = 5"]},
        {"cell_type": "code", "source": ["assert other > 1"]},
        {"cell_type": "code", "source": [f"# {IGNORE}: nbval does not see this marker\n", "x = 1"]},
        {"cell_type": "code", "source": ["print(x)"]},
    ]}
    assert unbacked_ignored_cells(notebook) == [0, 4]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_do_not_write_shipped_weights(path):
    # retrained weights go to a cache or temporary folder; snnlib/pretrained is read-only
    for cell in code_cells(load(path)):
        text = source(cell)
        for call in re.finditer(r"save_weights\(([^)]*)\)", text):
            assert not re.search(r"PRETRAINED|pretrained|_WEIGHTS", call.group(1)), (
                f"{path.name}: {call.group(0)} writes the shipped weights")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_quiet_tensorflow_by_importing_snnlib_first(path):
    first = source(code_cells(load(path))[0])
    imports = [node for node in parse(first).body if isinstance(node, (ast.Import, ast.ImportFrom))]
    # `import snnlib` comes before TensorFlow and Nengo, and quiets them (no repeated boilerplate)
    assert isinstance(imports[0], ast.Import) and imports[0].names[0].name == "snnlib", path.name
    assert "TF_CPP_MIN_LOG_LEVEL" not in first and "This version of" not in first, path.name


def test_importing_snnlib_quiets_tensorflow_and_the_version_notices():
    import os
    import subprocess
    import sys

    code = ("import os, warnings; warnings.simplefilter('always')\n"
            "import snnlib, tensorflow\n"
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])\n"
            "import nengo_dl, nengo_loihi  # nengo_dl sets it to 1 itself, too late for TF")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2"]
    # neither TensorFlow's C++ start-up lines nor the two "not tested with" notices reach stderr
    assert not TF_LOG.search(done.stderr), done.stderr[-2000:]
    assert "This version of" not in done.stderr, done.stderr[-2000:]
    # a reader's own choice wins
    env["TF_CPP_MIN_LOG_LEVEL"] = "1"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.split() == ["1"], done.stderr[-2000:]
