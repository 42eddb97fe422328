"""Build the assignments with otter assign: the student release and the instructor's bundle.

For each instructor notebook ``assignments/source/NN_name.ipynb`` (otter's format: an
``# ASSIGNMENT CONFIG`` cell, ``# BEGIN QUESTION`` / ``SOLUTION`` / ``TESTS`` blocks), ``otter
assign`` writes the student version (solutions replaced by their prompts, public tests in the
notebook's metadata for ``grader.check``) and the autograder version with the Gradescope zip
(hidden tests, otter's ``run_autograder``). This module only stages the files otter needs
(``course/``, ``snnlib/``, a ``requirements.txt`` from the lock), gives otter's generated cells
stable ids (so a rebuild changes nothing), adds the code rules to the zip (:func:`with_code_rules`:
the plugin :class:`course.otter_plugin.CodeRules`, so that Gradescope refuses what the local grader
refuses), and lays out::

    OUTPUT/student/NN_name.ipynb                       the release: no solutions, no hidden tests
    OUTPUT/autograder/NN_name/NN_name.ipynb            with solutions (instructors only)
    OUTPUT/autograder/NN_name/NN_name-autograder.zip   otter's Gradescope autograder
    OUTPUT/autograder/NN_name/otter_config.json

and copies the student versions to ``assignments/student/`` for the book.
"""
import filecmp
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = ROOT / "assignments" / "source"
BOOK_DIR = ROOT / "assignments" / "student"
OUTPUT = ROOT / "_build" / "assignments"
STAGED = ("course", "snnlib")
PLUGIN = "course.otter_plugin.CodeRules"
OTTER_RUN = 'run_autograder("/autograder")'  # the last line of otter 5.7.1's run_otter.py
RUN_OTTER = '''"""Runs Otter-Grader's autograding process, with the course's code rules.

Written by course/build.py in place of otter's own run_otter.py: it puts the zip's files/
(course, snnlib) on the path so that otter can import the plugin listed in otter_config.json
(course.otter_plugin.CodeRules: the code rules of the local grader, checked before the notebook
runs), and grades the autograder folder that holds this file's folder (/autograder on Gradescope).
"""
import os
import sys

SOURCE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(SOURCE, "files"))

from otter.run.run_autograder import main as run_autograder  # noqa: E402

if __name__ == "__main__":
    run_autograder(os.path.dirname(SOURCE))
'''


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
        config = with_code_rules(zip_path, bundle / f"{name}-autograder.zip", name)
        (bundle / "otter_config.json").write_text(config, encoding="utf-8")
    return student_dir / source.name


def with_code_rules(zip_path, target, name):
    """Copy otter's autograder zip to ``target`` with the code rules added; return its
    ``otter_config.json``.

    otter runs the notebook and the hidden tests in one process, where the notebook could
    replace the checks; the plugin :data:`PLUGIN` (shipped in the zip's ``files/course``) checks
    the code with :mod:`course.rules` in otter's grading process before the notebook runs, as
    the local grader does. ``run_otter.py`` (what Gradescope runs) is replaced so that otter can
    import it; ``otter run`` needs ``course`` importable (run it from the repository root).
    """
    with zipfile.ZipFile(zip_path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    contents = {info.filename: data for info, data in entries}
    if OTTER_RUN not in contents["run_otter.py"].decode("utf-8"):
        raise RuntimeError("otter's run_otter.py is not what course/build.py replaces (another "
                           "otter version?): the code rules could not be added")
    config = json.loads(contents["otter_config.json"])
    config["plugins"] = [p for p in config.get("plugins", []) if p != PLUGIN] + [
        {PLUGIN: {"assignment": name}}]
    config_text = json.dumps(config, indent=2)
    replaced = {"otter_config.json": config_text.encode("utf-8"),
                "run_otter.py": RUN_OTTER.encode("utf-8")}
    tmp = Path(f"{target}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w") as out:
        for info, data in entries:
            out.writestr(info, replaced.get(info.filename, data))
    os.replace(tmp, target)
    return config_text


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

