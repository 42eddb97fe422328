"""Build the assignments with otter assign: the student release and the instructor's bundle.

For each instructor notebook ``assignments/source/NN_name.ipynb`` (otter's format: an
``# ASSIGNMENT CONFIG`` cell, ``# BEGIN QUESTION`` / ``SOLUTION`` / ``TESTS`` blocks), ``otter
assign`` writes the student version (solutions replaced by their prompts, public tests in the
notebook's metadata for ``grader.check``) and the autograder version with the Gradescope zip
(hidden tests, otter's ``run_autograder``). This module only stages the files otter needs
(``course/``, ``snnlib/``, a ``requirements.txt`` from the lock), gives otter's generated cells
stable ids (so a rebuild changes nothing), and lays out::

    OUTPUT/student/NN_name.ipynb                       the release: no solutions, no hidden tests
    OUTPUT/autograder/NN_name/NN_name.ipynb            with solutions (instructors only)
    OUTPUT/autograder/NN_name/NN_name-autograder.zip   otter's Gradescope autograder
    OUTPUT/autograder/NN_name/otter_config.json

and copies the student versions to ``assignments/student/`` for the book.
"""
import filecmp
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = ROOT / "assignments" / "source"
BOOK_DIR = ROOT / "assignments" / "student"
OUTPUT = ROOT / "_build" / "assignments"
STAGED = ("course", "snnlib")


@dataclass(frozen=True)
class QuestionInfo:
    """A question as the instructor notebook declares it."""

    name: str
    points: float
    manual: bool


def sources(source_dir=SOURCE_DIR):
    return sorted(Path(source_dir).glob("[0-9][0-9]_*.ipynb"))


def question_info(path):
    """The questions of an instructor notebook, read with otter's own block parser."""
    from otter.assign.blocks import BlockType, get_cell_config, is_block_boundary_cell

    found = []
    for cell in nbformat.read(path, as_version=4).cells:
        if is_block_boundary_cell(cell, BlockType.QUESTION):
            config = get_cell_config(cell) or {}
            points = config.get("points")
            if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
                raise ValueError(f"{Path(path).name}: question {config.get('name')!r} needs "
                                 "`points:` (a positive number) in its BEGIN QUESTION cell")
            found.append(QuestionInfo(str(config["name"]), float(points),
                                      bool(config.get("manual", False))))
    return found


def _stage(source, stage):
    stage.mkdir(parents=True)
    shutil.copy(source, stage / source.name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in STAGED:
        shutil.copytree(ROOT / name, stage / name, ignore=ignore)
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    (stage / "requirements.txt").write_text(lock, encoding="utf-8")


def stable_ids(nb, source_ids):
    """Give the cells otter added (init and check cells) ids derived from their content."""
    used = set(source_ids)
    for cell in nb.cells:
        if cell.get("id") in source_ids:
            continue
        base = "otter-" + hashlib.sha256(cell.source.encode()).hexdigest()[:10]
        new, n = base, 1
        while new in used:
            new, n = f"{base}-{n}", n + 1
        cell.id = new
        used.add(new)
    return nb


def assign(source, output):
    """Run otter assign on one instructor notebook; write its files into ``output``."""
    from otter.assign import main as otter_assign

    name = source.stem
    with tempfile.TemporaryDirectory(prefix="otter-assign-") as tmp:
        stage = Path(tmp) / name
        _stage(source, stage)
        otter_assign(str(stage / source.name), str(stage / "out"), no_run_tests=True,
                     no_pdfs=True)
        source_ids = {c.get("id") for c in nbformat.read(source, as_version=4).cells}
        student_dir, bundle = output / "student", output / "autograder" / name
        student_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(bundle, ignore_errors=True)
        bundle.mkdir(parents=True)
        made = stage / "out"
        for kind, target in (("student", student_dir / source.name),
                             ("autograder", bundle / source.name)):
            nb = nbformat.read(made / kind / source.name, as_version=4)
            nbformat.write(stable_ids(nb, source_ids), target)
        (zip_path,) = (made / "autograder").glob("*-autograder_*.zip")
        shutil.copy(zip_path, bundle / f"{name}-autograder.zip")
        shutil.copy(made / "autograder" / "otter_config.json", bundle / "otter_config.json")
    return student_dir / source.name


def build(source_dir=SOURCE_DIR, output=OUTPUT, book_dir=BOOK_DIR):
    """Build every assignment; copy the student versions to ``book_dir`` (None: don't)."""
    output = Path(output)
    written = [assign(path, output) for path in sources(source_dir)]
    if book_dir is not None:
        Path(book_dir).mkdir(parents=True, exist_ok=True)
        for path in written:
            shutil.copy(path, Path(book_dir) / path.name)
    return written


def problems(source_dir=SOURCE_DIR, book_dir=BOOK_DIR, built=None):
    """What is wrong with the sources or the book's student versions (empty: all is well).

    Rebuilds into a temporary folder (or uses ``built``, the output of :func:`build` for the
    same sources) and compares; checks that every autograded question of each source has its
    checks in :mod:`course.questions` and the other way round.
    """
    from course import questions

    found = []
    paths = sources(source_dir)
    names = {p.stem for p in paths}
    for key in sorted(set(questions.ASSIGNMENTS) - names):
        found.append(f"{key} has checks in course/questions/ but no {key}.ipynb in {source_dir}")
    for extra in sorted({p.stem for p in Path(book_dir).glob("*.ipynb")} - names):
        found.append(f"{Path(book_dir) / extra}.ipynb has no source notebook (delete it)")
    for path in paths:
        if path.stem not in questions.ASSIGNMENTS:
            found.append(f"{path.name}: no checks registered in course/questions/")
            continue
        declared = {q.name for q in question_info(path) if not q.manual}
        checked = set(questions.questions(path.stem))
        if declared != checked:
            found.append(f"{path.name}: autograded questions {sorted(declared)} but checks for "
                         f"{sorted(checked)}")
    with tempfile.TemporaryDirectory(prefix="assignments-check-") as tmp:
        if built is None:
            build(source_dir, Path(tmp), book_dir=None)
            built = tmp
        for path in paths:
            made = Path(built) / "student" / path.name
            committed = Path(book_dir) / path.name
            if not committed.exists():
                found.append(f"{committed} is missing: run `python3 dev.py assignments build`")
            elif not filecmp.cmp(made, committed, shallow=False):
                found.append(f"{committed} is stale (not what otter assign makes from "
                             f"{path.name}): run `python3 dev.py assignments build`")
            else:
                found += leaks(made)
    return found


def leaks(student_path):
    """Solution or hidden-test text left in a student notebook."""
    text = Path(student_path).read_text(encoding="utf-8")
    marks = ("BEGIN SOLUTION", "END SOLUTION", "hidden=True", "check_in_process",
             "BEGIN TESTS", "ASSIGNMENT CONFIG")
    return [f"{Path(student_path).name}: contains {m!r}" for m in marks if m in text]

