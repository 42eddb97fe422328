"""Grade submitted notebooks: the trusted process.

For a folder of submissions:

1. every file is read once, into memory, before anything runs (:mod:`course.submissions`);
   the assignment comes from otter's ``assignment_name`` metadata or the file name, the points
   from the instructor's notebook, never from the submission;
2. the code is checked (:mod:`course.rules`): a notebook that reaches outside itself is not
   run (every question 0, flagged for an instructor); an answer that uses what its question
   forbids (``snnlib.sim.simulator`` to "write" the neuron...) gets 0 for that question;
3. for each assignment, inputs are drawn with a fresh seed and ``snnlib``'s answers computed
   here (:mod:`course.questions`);
4. each notebook runs in its own sandbox (:mod:`course.sandbox`), which returns the student's
   functions' results on those inputs as data; this process validates and compares them.
   Written answers are listed for manual review, never scored here;
5. the gradebook (CSV, and JSON with every message) is rewritten after each notebook, so it
   exists even if the run is interrupted.

One broken or hostile notebook never stops the run; :func:`main` exits with the number of
notebooks that could not be graded (unreadable, unknown assignment, or a run that did not
finish), at most 100.
"""
import argparse
import concurrent.futures
import csv
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course import build, questions, rules, sandbox, submissions, wire
from course.sandbox import Limits

MAX_EXIT = 100
USAGE_ERROR = 125


@dataclass
class QuestionResult:
    name: str
    points: object          # float, or None for a manually graded question
    max: float
    message: str
    manual: bool = False


@dataclass
class Result:
    file: str
    assignment: str = "?"
    status: str = "not graded"   # "graded", "incomplete" (the run did not finish), "not graded"
    questions: list = field(default_factory=list)
    review: list = field(default_factory=list)   # what an instructor must read
    error: str = ""
    cell_errors: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self):
        return sum(q.points for q in self.questions if q.points is not None)

    @property
    def max_points(self):
        return sum(q.max for q in self.questions if not q.manual)

    @property
    def graded(self):
        return self.status == "graded"

    def as_dict(self):
        out = asdict(self)
        out.update(points=self.points, max_points=self.max_points)
        return out


@dataclass
class Submission:
    path: Path
    result: Result
    nb: dict = None


def clean(text):
    """Text safe to print and write (a notebook's messages may hold lone surrogates)."""
    return str(text).encode("utf-8", "replace").decode("utf-8")


def collect(paths):
    """The files to grade: files as given, folders' ``*.ipynb`` (sorted, not recursive)."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.iterdir()
                            if p.name.endswith(".ipynb") and not p.name.startswith("."))
        else:
            found.append(path)
    return found


def read_all(paths, assignment=None):
    """Read every submission now (a later change to the files changes nothing)."""
    known = list(questions.ASSIGNMENTS)
    out = []
    for path in collect(paths):
        result = Result(clean(path))
        submission = Submission(path, result)
        try:
            submission.nb = submissions.parse(submissions.read_bytes(path))
        except submissions.Unreadable as error:
            result.error = f"cannot read the notebook: {error}"
        else:
            key = assignment or submissions.identify(submission.nb, path.name, known)
            if key is None:
                result.error = ("unknown assignment (no otter assignment_name metadata, and the "
                                f"file name does not start with one of {known})")
            else:
                result.assignment = key
        out.append(submission)
    return out


SYSTEM = {Path(p) for p in ("/", "/bin", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sys",
                              "/tmp", "/usr", "/var", "/run", "/home", "/root", "/opt")}


def git_dir(root):
    """The repository's history (in a worktree, ``.git`` is a file naming it)."""
    dot_git = Path(root) / ".git"
    if dot_git.is_file():
        for line in dot_git.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("gitdir:"):
                path = Path(line[7:].strip())
                return (path.parents[1] if path.parent.name == "worktrees" else path).resolve()
    return dot_git.resolve()


def hidden_paths(source_dir, submission_paths, run_dir):
    """What the sandbox must not see: the instructor's sources and builds, the repository's
    history, the submissions' folders (unless one holds something the sandbox needs)."""
    import snnlib

    needed = [sandbox.ROOT / "course", Path(snnlib.__file__).resolve().parent,
              Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(run_dir)]
    wanted = {Path(source_dir).resolve(), build.OUTPUT.resolve(), git_dir(build.ROOT)}
    wanted |= {Path(p).absolute().parent.resolve() for p in submission_paths}
    return sorted(str(p) for p in wanted
                  if p.is_dir() and p not in SYSTEM
                  and not any(n == p or p in n.parents for n in needed))


def prepare(key, source_dir, seed):
    """Points, inputs and references of one assignment (trusted)."""
    module = questions.load(key)
    info = build.question_info(Path(source_dir) / f"{key}.ipynb")
    rng, seed = questions.fresh_rng(seed)
    cases = module.draw(rng)
    expected = module.expected(cases)
    return dict(info=info, seed=seed, cases=cases, expected=expected,
                sandbox=questions.sandbox_cases(module, cases, expected),
                questions=questions.questions(key))


def check_code(submission, task, enabled=True):
    """Before anything runs: (findings for the whole notebook, {question: findings},
    {question: why its function is missing})."""
    notebook = rules.Notebook(submissions.code_cells(submission.nb))
    missing = {name: rules.undefined(notebook, q.functions)
               for name, q in task["questions"].items()}
    missing = {name: text for name, text in missing.items() if text}
    if not enabled:
        return [], {}, missing
    per_question = {}
    for name, question in task["questions"].items():
        found = rules.question_findings(notebook, question.functions, question.allowed,
                                        question.denied)
        if found:
            per_question[name] = found
    return rules.notebook_findings(notebook), per_question, missing


def judge(question, cases, expected, answers):
    """Points fraction (all or nothing) and message from the returned data (trusted); the
    message is None when nothing came back."""
    if not answers:
        return 0, None
    message = ""
    for case, reference, returned in zip(cases, expected, answers):
        if not isinstance(returned, dict):
            return 0, "unreadable answer"
        if "error" in returned:
            return 0, clean(f"{question.functions[0]}: {str(returned['error'])[:400]}")
        try:
            message = question.compare(case, reference, returned.get("value"))
        except questions.Wrong as wrong:
            return 0, clean(str(wrong)[:600])
        except Exception as error:  # data no check anticipated: still a wrong answer
            return 0, f"the returned value could not be checked ({type(error).__name__})"
    if len(answers) != len(cases):
        return 0, None
    return 1, message or "correct"


def finding_text(findings, limit=6):
    text = "; ".join(str(f) for f in findings[:limit])
    return text + (f"; and {len(findings) - limit} more" if len(findings) > limit else "")


def refused_notebook(wide):
    """The message of every question of a notebook that reaches outside itself (not run)."""
    return "not graded automatically: the notebook uses " + finding_text(wide)


def refused_answer(found):
    """The message of a question whose answer uses what the question forbids."""
    return "0: the answer uses " + finding_text(found)


def grade_one(submission, task, outcome, code):
    """Fill ``submission.result`` from the code checks and the sandbox's outcome."""
    result = submission.result
    wide, per_question, missing = code
    manual = [q for q in task["info"] if q.manual]
    written = submissions.manual_answers(submission.nb, [q.name for q in manual])
    for info in task["info"]:
        if info.manual:
            text = written.get(info.name, "")
            words = len(text.split())
            result.questions.append(QuestionResult(
                info.name, None, info.points,
                f"written answer, {words} words: read by an instructor" if words
                else "no written answer", manual=True))
            result.review.append(f"{info.name}: written answer ({words} words)")
            continue
        question = task["questions"][info.name]
        if wide:
            message = refused_notebook(wide)
        elif info.name in per_question:
            message = refused_answer(per_question[info.name])
            result.review.append(f"{info.name}: {finding_text(per_question[info.name], 2)}")
        elif info.name in missing:
            message = missing[info.name]
        else:
            fraction, message = judge(question, task["sandbox"][info.name],
                                      task["expected"][info.name],
                                      outcome.answers.get(info.name) if outcome else None)
            if message is None:
                message = "no answer: " + (outcome.stopped if outcome and outcome.stopped
                                           else "the run returned nothing")
            if fraction:
                result.questions.append(QuestionResult(info.name, info.points, info.points,
                                                       message))
                continue
            if outcome and outcome.cell_errors and ("not defined" in message):
                message += clean(" Cells that failed: " + "; ".join(outcome.cell_errors[:3]))
        result.questions.append(QuestionResult(info.name, 0.0, info.points, message))
    if wide:
        result.review.insert(0, "whole notebook (not run): " + finding_text(wide, 6))
    if outcome is not None:
        result.cell_errors = [clean(e) for e in outcome.cell_errors]
        result.seconds = outcome.seconds
        if not outcome.finished:
            result.status = "incomplete"
            result.error = outcome.stopped
            return result
    result.status = "graded"
    return result


def plan(submission, task, limits, code_rules):
    """Check the code; grade now what needs no run, or return what the sandbox must run."""
    code = check_code(submission, task, code_rules)
    wide, per_question, missing = code
    to_run = [q.name for q in task["info"]
              if not q.manual and q.name not in per_question and q.name not in missing]
    if wide or not to_run:
        grade_one(submission, task, None, code)
        return None
    request = wire.dumps({
        "assignment": submission.result.assignment,
        "cells": [list(c) for c in submissions.code_cells(submission.nb)],
        "questions": to_run, "cases": {q: task["sandbox"][q] for q in to_run},
        "cell_timeout": limits.cell_timeout, "check_timeout": limits.check_timeout})
    return submission, task, code, to_run, request


def internal_error(result, doing, error):
    """A notebook that made the grader itself fail: not graded, the run goes on."""
    result.status, result.questions = "not graded", []
    result.error = f"the grader failed while {doing}: {type(error).__name__}: {str(error)[:200]}"


def grade(paths, *, limits=Limits(), seed=None, jobs=1, assignment=None,
          source_dir=build.SOURCE_DIR, code_rules=True, report=None):
    """Grade notebooks; returns (results, info) and never raises for a bad notebook.

    Parameters
    ----------
    paths : list of str or Path
        Notebooks, or folders of them.
    limits : Limits
        Time, memory and output limits of each run.
    seed : int or None
        Seed of the inputs (None: a fresh one; it is reported either way).
    jobs : int
        Notebooks run at the same time.
    assignment : str or None
        Grade every notebook as this assignment instead of recognizing it.
    source_dir : path
        The instructor notebooks (points, manual questions).
    code_rules : bool
        Check the code before running it (:mod:`course.rules`). Only the tests turn this off,
        to show that the sandbox alone also holds.
    report : callable or None
        Called with each finished :class:`Result` (and the list so far), e.g. to rewrite the
        gradebook.
    """
    report = report or (lambda result, results: None)
    all_submissions = read_all(paths, assignment)
    results = [s.result for s in all_submissions]
    for s in all_submissions:
        if s.nb is None or s.result.assignment == "?":
            report(s.result, results)
    todo = [s for s in all_submissions if s.nb is not None and s.result.assignment != "?"]
    info = {"seeds": {}, "isolation": ""}
    if not todo:
        return results, info
    run_dir = tempfile.mkdtemp(prefix="snnlib-grade-")
    os.chmod(run_dir, 0o711)
    try:
        hide = hidden_paths(source_dir, [s.path for s in all_submissions], run_dir)
        try:
            isolation = sandbox.choose_isolation(run_dir, hide)
        except RuntimeError as error:  # nothing can run here: say so for every notebook
            for s in todo:
                s.result.error = str(error)[:500]
                report(s.result, results)
            return results, info
        info["isolation"] = isolation.describe()
        tasks = {}
        for key in sorted({s.result.assignment for s in todo}):
            try:
                tasks[key] = prepare(key, source_dir, seed)
                info["seeds"][key] = tasks[key]["seed"]
            except Exception as error:  # the grader's own environment is broken
                tasks[key] = f"the grader could not prepare {key}: {type(error).__name__}: " \
                             f"{str(error)[:300]}"
        runs = []
        for s in todo:
            task = tasks[s.result.assignment]
            if isinstance(task, str):
                s.result.error = task
                report(s.result, results)
                continue
            try:
                item = plan(s, task, limits, code_rules)
            except Exception as error:  # a notebook no check anticipated: report it, go on
                internal_error(s.result, "checking its code", error)
                item = None
            if item is None:
                report(s.result, results)
            else:
                runs.append(item)

        def run(item):
            *_, to_run, request = item
            process, handle = sandbox.launch(run_dir, request, limits=limits,
                                             isolation=isolation, hide=hide,
                                             argv_tail=lambda box: [str(box)])
            return sandbox.finish(process, handle, limits=limits, questions=to_run)

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(run, item): item for item in runs}
            for future in concurrent.futures.as_completed(futures):
                s, task, code, *_ = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # the sandbox could not start at all
                    s.result.error = f"the sandbox failed: {type(error).__name__}: {error}"
                    report(s.result, results)
                    continue
                try:
                    grade_one(s, task, outcome, code)
                except Exception as error:
                    internal_error(s.result, "judging its answers", error)
                report(s.result, results)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return results, info


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------

def format_report(result):
    """A table: question, points, max, message; then the total and what to review."""
    lines = [f"== {result.file} ({result.assignment}, {result.status}, {result.seconds:g} s)"]
    if result.error:
        lines.append(f"   note: {result.error}")
    width = max([len(q.name) for q in result.questions] + [8])
    if result.questions:
        lines.append(f"   {'question':{width}s}  points  max  message")
    for q in result.questions:
        points = "manual" if q.points is None else f"{q.points:g}"
        lines.append(f"   {q.name:{width}s}  {points:>6s}  {q.max:3g}  {q.message}")
    if result.questions:
        lines.append(f"   {'total':{width}s}  {result.points:6g}  {result.max_points:3g}"
                     "  (automatic)")
    for item in result.review:
        lines.append(f"   manual review: {item}")
    return "\n".join(lines)


def columns(results):
    names = []
    for r in results:
        names += [q.name for q in r.questions if q.name not in names]
    return names


def gradebook_csv(results):
    """One row per notebook: file, assignment, status, automatic points, max, one column per
    question (empty for a manually graded one), what to review, notes."""
    names = columns(results)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "assignment", "status", "points", "max_points"] + names
                    + ["manual_review", "notes"])
    for r in results:
        scores = {q.name: ("" if q.points is None else f"{q.points:g}") for q in r.questions}
        writer.writerow([r.file, r.assignment, r.status, f"{r.points:g}", f"{r.max_points:g}"]
                        + [scores.get(n, "") for n in names]
                        + [" | ".join(r.review), r.error])
    return out.getvalue()


def write_atomic(path, text):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8", errors="replace")
    os.replace(tmp, path)


def positive(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def positive_int(text):
    value = positive(text)
    if value != int(value) or value > 10**6:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number from 1 to 10**6")
    return int(value)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def add_arguments(parser):
    d = Limits()
    parser.add_argument("paths", nargs="+", help="notebooks, or folders of them")
    parser.add_argument("--csv", metavar="FILE", help="write the gradebook (one row a notebook)")
    parser.add_argument("--json", metavar="FILE", help="write every result and message")
    parser.add_argument("--timeout", type=positive, default=d.timeout,
                        help="seconds a whole run may take (default %(default)g)")
    parser.add_argument("--cell-timeout", type=positive, default=d.cell_timeout,
                        help="seconds one cell may run (default %(default)g)")
    parser.add_argument("--check-timeout", type=positive, default=d.check_timeout,
                        help="seconds one question's calls may take (default %(default)g)")
    parser.add_argument("--memory-mb", type=positive_int, default=d.memory_mb,
                        help="address space of a run, MiB (default %(default)d)")
    parser.add_argument("--output-mb", type=positive_int, default=d.output_mb,
                        help="largest file (printed output included) a run may write, MiB "
                             "(default %(default)d)")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="notebooks graded at the same time (default %(default)d)")
    parser.add_argument("--seed", type=int, help="seed of the grading inputs (default: fresh)")
    parser.add_argument("--assignment", choices=sorted(questions.ASSIGNMENTS),
                        help="grade every notebook as this assignment")
    parser.add_argument("--source", default=str(build.SOURCE_DIR),
                        help="folder of the instructor notebooks (default %(default)s)")


def main(args):
    limits = Limits(timeout=args.timeout, cell_timeout=args.cell_timeout,
                    check_timeout=args.check_timeout, memory_mb=args.memory_mb,
                    output_mb=args.output_mb)
    start = time.monotonic()
    info_holder = {}

    def report(result, results):
        print(format_report(result), flush=True)
        done = [r for r in results if r.status != "not graded" or r.error]
        if args.csv:
            write_atomic(args.csv, gradebook_csv(done))
        if args.json:
            write_atomic(args.json, json.dumps(
                {"results": [r.as_dict() for r in done], **info_holder}, indent=1) + "\n")

    results, info = grade(args.paths, limits=limits, seed=args.seed, jobs=args.jobs,
                          assignment=args.assignment, source_dir=args.source, report=report)
    info_holder.update(info)
    if not results:
        print("no notebooks found", file=sys.stderr)
        return USAGE_ERROR
    if args.csv:
        write_atomic(args.csv, gradebook_csv(results))
    if args.json:
        write_atomic(args.json, json.dumps({"results": [r.as_dict() for r in results], **info},
                                           indent=1) + "\n")
    failed = [r for r in results if not r.graded]
    print(f"\n{len(results) - len(failed)} of {len(results)} notebooks graded in "
          f"{time.monotonic() - start:.0f} s; inputs seeded {info.get('seeds', {})}; "
          f"isolation: {info.get('isolation') or 'none needed'}")
    for r in failed:
        print(f"   NOT GRADED: {r.file}: {r.error or r.status}")
    return min(len(failed), MAX_EXIT)
