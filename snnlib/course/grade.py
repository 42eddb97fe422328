"""The autograder: run a student's notebook in a fresh kernel, then the hidden checks.

For each notebook:

1. every code cell runs in order in a new Jupyter kernel (``allow_errors``: a cell that fails,
   even with a syntax error, does not stop the next ones), in an empty scratch folder, with
   a limit per cell and one for the whole notebook; once the notebook's limit is
   reached the running cell is interrupted and the remaining cells are skipped;
2. then, in the same kernel, one short call per question
   (:func:`snnlib.course.harness.run`) checks the student's functions against :mod:`snnlib`
   references on hidden inputs, with its own time limit. An exception or a wrong answer is a
   zero for that question, with the message; a question whose function is missing also lists
   the cells that failed.

Nothing is downloaded: the kernel uses the installed :mod:`snnlib`, its saved weights and the
offline MNIST subset. The hidden checks run in the student's kernel, so a determined student
could tamper with them; review suspicious notebooks by hand.
"""
import csv
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from snnlib.course.harness import MARKER
from snnlib.course.questions import ASSIGNMENTS

NOTEBOOK_TIMEOUT = 300  # seconds for all the student's cells together
CELL_TIMEOUT = 120      # seconds for one student cell
CHECK_TIMEOUT = 120     # seconds for one question's checks
STARTUP_TIMEOUT = 60    # seconds for the kernel to start


class KernelStuck(RuntimeError):
    """The kernel ignored an interrupt: nothing more can run in it."""


@dataclass
class QuestionResult:
    id: str
    points: float
    max: float
    message: str
    manual: bool = False


@dataclass
class NotebookResult:
    path: str
    assignment: str
    questions: list = field(default_factory=list)
    cell_errors: list = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def points(self):
        return sum(q.points for q in self.questions)

    @property
    def max_points(self):
        return sum(q.max for q in self.questions)

    def as_dict(self):
        out = asdict(self)
        out.update(points=self.points, max_points=self.max_points)
        return out


def identify(path, nb):
    """The assignment key of a notebook: its metadata, or the ``NN_name`` start of its file name."""
    key = nb.metadata.get("snnlib_course", {}).get("assignment") if nb is not None else None
    if key in ASSIGNMENTS:
        return key
    stem = Path(path).stem
    for known in ASSIGNMENTS:
        if stem.startswith(known):
            return known
    # e.g. "01_alice.ipynb": the two-digit number names the assignment
    by_number = [known for known in ASSIGNMENTS if stem[:3] == known[:3]]
    return by_number[0] if len(by_number) == 1 else None
    return None


def cell_error(cell):
    """'ExcType: message' of the first error output of an executed cell, or None."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


def read_marker(cell):
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")
    for line in text.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    return None


def zero_all(result, assignment, message):
    result.questions = [QuestionResult(q.id, 0, q.points, message, q.manual)
                        for q in assignment.questions]
    return result


def grade_notebook(path, *, notebook_timeout=NOTEBOOK_TIMEOUT, cell_timeout=CELL_TIMEOUT,
                   check_timeout=CHECK_TIMEOUT, kernel_name="python3"):
    """Grade one notebook; never raises for a broken notebook (its questions get 0).

    Parameters
    ----------
    path : str or Path
        The student's ``.ipynb``.
    notebook_timeout : float
        Seconds all the student's cells together may run; then the running cell is interrupted
        and the rest skipped (their questions usually get 0).
    cell_timeout : float
        Seconds one student cell may run.
    check_timeout : float
        Seconds one question's hidden checks may run (the student's function may loop forever).
    kernel_name : str
        Jupyter kernel to run in.

    Returns
    -------
    NotebookResult
    """
    start = time.monotonic()
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook...
        nb, read_error = None, f"cannot read the notebook: {type(error).__name__}: {error}"
    else:
        read_error = ""
    key = identify(path, nb)
    result = NotebookResult(str(path), key or "?")
    if key is None:
        result.error = read_error or "unknown assignment (no snnlib_course metadata and the file " \
                                     f"name does not start with one of {list(ASSIGNMENTS)})"
        return result
    assignment = ASSIGNMENTS[key]
    if read_error:
        result.error = read_error
        return zero_all(result, assignment, read_error)
    with tempfile.TemporaryDirectory(prefix="snnlib-grade-") as scratch:
        try:
            run_in_kernel(nb, assignment, result, scratch, notebook_timeout,
                          cell_timeout, check_timeout, kernel_name)
        except Exception as error:  # kernel failed to start, died, ...
            result.error = f"{type(error).__name__}: {error}"
    graded = {q.id for q in result.questions}
    for q in assignment.questions:
        if q.id not in graded:
            message = "not graded: " + (result.error or "no result from the checks")
            result.questions.append(QuestionResult(q.id, 0, q.points, message, q.manual))
    order = [q.id for q in assignment.questions]
    result.questions.sort(key=lambda r: order.index(r.id))
    result.seconds = round(time.monotonic() - start, 1)
    return result


def run_in_kernel(nb, assignment, result, scratch, notebook_timeout, cell_timeout,
                  check_timeout, kernel_name):
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name=kernel_name, allow_errors=True,
                            interrupt_on_timeout=True, startup_timeout=STARTUP_TIMEOUT,
                            error_on_timeout={"ename": "TimeoutError",
                                              "evalue": "interrupted by the grader",
                                              "traceback": []},
                            resources={"metadata": {"path": str(scratch)}})
    deadline = time.monotonic() + notebook_timeout
    with client.setup_kernel():
        stopped = ""
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if stopped:
                cell.outputs = []
                continue
            left = deadline - time.monotonic()
            limit = min(cell_timeout, left)
            if limit <= 0:
                stopped = f"notebook exceeded {notebook_timeout:g} s; cells from {index} on not run"
                continue
            try:
                timed_out = execute(client, cell, limit, index)
            except DeadKernelError:
                result.error = f"the kernel died in cell {index}"
                return
            if timed_out:
                which = "notebook" if limit < cell_timeout else "cell"
                seconds = notebook_timeout if which == "notebook" else cell_timeout
                stopped = (f"{which} exceeded {seconds:g} s (cell {index} interrupted; "
                           "later cells not run)")
                result.cell_errors.append(f"cell {index}: {stopped}")
                if not responsive(client):
                    result.error = f"{stopped}; the kernel did not stop"
                    return
            else:
                error = cell_error(cell)
                if error:
                    result.cell_errors.append(f"cell {index} failed: {error}")
        if stopped:
            result.error = stopped
        for question in assignment.questions:
            try:
                result.questions.append(
                    run_check(client, assignment, question, check_timeout, result, scratch))
            except KernelStuck as error:
                result.error = str(error)
                return


def execute(client, cell, limit, index=0):
    """Run one cell for at most ``limit`` seconds; True when it had to be interrupted.

    nbclient interrupts the kernel at the limit and stops waiting for the cell's reply, so a
    student's infinite loop can delay grading by about ``limit`` seconds only.
    """
    client.timeout = max(1, int(limit))
    start = time.monotonic()
    client.execute_cell(cell, index)
    return time.monotonic() - start >= client.timeout


def responsive(client):
    """After an interrupt: does the kernel answer a trivial cell within 15 s?"""
    return not execute(client, nbformat.v4.new_code_cell("pass"), 15)


def run_check(client, assignment, question, check_timeout, result, scratch):
    from nbclient.exceptions import DeadKernelError

    out = Path(scratch) / f"result-{question.id}.json"
    code = ("import snnlib.course.harness as _snnlib_grade_harness\n"
            f"_snnlib_grade_harness.run({assignment.key!r}, {question.id!r}, globals(), {str(out)!r})")
    cell = nbformat.v4.new_code_cell(code)
    try:
        timed_out = execute(client, cell, check_timeout)
    except DeadKernelError:
        return QuestionResult(question.id, 0, question.points,
                              "the kernel died while checking", question.manual)
    if timed_out:
        message = (f"the checks did not finish within {check_timeout:g} s (an infinite loop in "
                   f"{', '.join(question.names)}?)")
        if not responsive(client):
            raise KernelStuck(message + "; the kernel did not stop")
        return QuestionResult(question.id, 0, question.points, message, question.manual)
    found = json.loads(out.read_text(encoding="utf-8")) if out.exists() else read_marker(cell)
    if found is None:
        error = cell_error(cell) or "no result"
        return QuestionResult(question.id, 0, question.points, f"the checks failed to run: "
                              f"{error}", question.manual)
    message = found.get("message", "")
    if found.get("missing"):
        if result.cell_errors:
            message += " Cells that failed: " + "; ".join(result.cell_errors)
        elif result.error:
            message += f" ({result.error})"
    return QuestionResult(question.id, found["points"], question.points, message,
                          question.manual)


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------

def notebooks(paths):
    """The notebooks to grade: files as given, folders' ``*.ipynb`` (sorted, not recursive)."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
        else:
            found.append(path)
    return found


def format_report(result):
    """A table: question, points, max, message; then the total."""
    lines = [f"== {result.path} ({result.assignment}, {result.seconds:g} s)"]
    if result.error:
        lines.append(f"   note: {result.error}")
    width = max([len(q.id) for q in result.questions] + [8])
    lines.append(f"   {'question':{width}s}  points  max  message")
    for q in result.questions:
        flag = " [manual review]" if q.manual else ""
        lines.append(f"   {q.id:{width}s}  {q.points:6g}  {q.max:3g}  {q.message}{flag}")
    lines.append(f"   {'total':{width}s}  {result.points:6g}  {result.max_points:3g}")
    return "\n".join(lines)


def write_csv(results, path):
    """One row per notebook: path, assignment, total, max, then one column per question."""
    ids = []
    for r in results:
        ids += [q.id for q in r.questions if q.id not in ids]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "assignment", "points", "max_points"] + ids + ["error"])
        for r in results:
            scores = {q.id: q.points for q in r.questions}
            writer.writerow([r.path, r.assignment, r.points, r.max_points]
                            + [scores.get(i, "") for i in ids] + [r.error])


def write_json(results, path):
    Path(path).write_text(json.dumps([r.as_dict() for r in results], indent=1) + "\n",
                          encoding="utf-8")
