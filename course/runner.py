"""What runs inside the sandbox: the notebook's cells, then the student's functions on the cases.

``python -m course.runner DIR`` reads ``DIR/request.json`` (written by the trusted grader), runs
the cells it lists in one namespace (each with a time limit; an error or a timeout stops that
cell only), then calls each question's functions on its cases and writes the returned *data*
to ``DIR/out/<question>.json`` (:mod:`course.wire`), one file per question as soon as it is
done. It computes no score and the grader trusts nothing it writes except as data to check.

``import otter`` gets a stand-in whose ``Notebook.check`` does nothing: the public tests are for
the student, and grading must not run test code taken from the submitted notebook's metadata.
"""
import builtins
import json
import os
import signal
import sys
import time
import traceback
import types

from course import wire
from course.questions import load, questions

MESSAGE = 300  # characters kept of an exception message


class TimeLimit(BaseException):
    """Raised in the running cell or function when its time is up."""


def _alarm(signum, frame):
    raise TimeLimit()


class limit:
    """``with limit(seconds):`` raises :class:`TimeLimit` in the main thread when time is up.

    The alarm repeats every second until the block ends: library code that swallows the first
    one (an ``except BaseException`` in a callback, as in TensorFlow's import) must not leave
    the cell running until the wall-clock limit.
    """

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        signal.setitimer(signal.ITIMER_REAL, self.seconds, 1.0)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        return False


def describe(error):
    """'Type: message (cell N, line L)' for an exception from the student's code."""
    where = ""
    try:
        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if f.filename.startswith("<cell ")]
        if frames:
            where = f" ({frames[-1].filename[1:-1]}, line {frames[-1].lineno})"
        text = str(error)
    except BaseException:  # a hostile __str__
        text = "?"
    if isinstance(error, NotImplementedError):
        return "not implemented yet (NotImplementedError)"
    return f"{type(error).__name__}: {text[:MESSAGE]}{where}"


def otter_stand_in():
    module = types.ModuleType("otter")

    class Notebook:
        def __init__(self, *args, **kwargs):
            pass

        def check(self, *args, **kwargs):
            return None

        def check_all(self, *args, **kwargs):
            return None

    module.Notebook = Notebook
    return module


def write_json(path, value):
    """Write then rename, so the grader never reads half a file."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(value)
    os.replace(path + ".tmp", path)


def run_cells(cells, env, cell_timeout):
    errors = []
    for index, source in cells:
        try:
            code = compile(source, f"<cell {index}>", "exec")
        except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
            errors.append(f"cell {index}: {type(error).__name__}: {str(error)[:MESSAGE]}")
            continue
        try:
            with limit(cell_timeout):
                exec(code, env)
        except TimeLimit:
            errors.append(f"cell {index}: stopped after {cell_timeout:g} s (cell time limit)")
        except BaseException as error:  # SystemExit, KeyboardInterrupt... stop the cell only
            try:
                with limit(5):
                    errors.append(f"cell {index}: {describe(error)}")
            except TimeLimit:
                errors.append(f"cell {index}: {type(error).__name__}")
    return errors


def answer(question, env, case, seconds, check_timeout):
    """``{"value": data}`` or ``{"error": message}`` for one case."""
    missing = [name for name in question.functions if not callable(env.get(name))]
    if missing:
        return {"error": f"{', '.join(missing)} is not defined (did its cell run without "
                         "errors?)"}
    try:
        with limit(seconds):
            return {"value": wire.encode(question.answer(env, case))}
    except TimeLimit:
        return {"error": f"did not return within {check_timeout:g} s", "timeout": True}
    except wire.WireError as error:
        return {"error": f"returned {error}, which cannot be graded"}
    except BaseException as error:
        try:
            with limit(5):
                return {"error": describe(error)}
        except TimeLimit:
            return {"error": type(error).__name__}


def answers(question, env, cases, check_timeout):
    """The results of all cases of a question, within one time budget."""
    results, deadline = [], time.monotonic() + check_timeout
    for case in cases:
        left = deadline - time.monotonic()
        results.append(answer(question, env, case, left, check_timeout) if left > 0
                       else {"error": f"did not return within {check_timeout:g} s",
                             "timeout": True})
        if results[-1].get("timeout"):
            break
    return results


def main(directory):
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # output over the size limit: an error, not death
    with open(os.path.join(directory, "request.json"), encoding="utf-8") as f:
        request = wire.loads(f.read())
    out = os.path.join(directory, "out")
    key = request["assignment"]
    graded = questions(key)
    load(key)  # import the assignment's module before the student's code runs
    # the course library too: importing it (TensorFlow) takes seconds on a loaded machine, which
    # must not count against the first cell's time limit
    import snnlib  # noqa: F401
    sys.modules["otter"] = otter_stand_in()
    env = {"__name__": "__main__", "__builtins__": builtins, "display": lambda *a, **k: None}
    start = time.monotonic()
    errors = run_cells(request["cells"], env, request["cell_timeout"])
    write_json(os.path.join(out, "status.json"),
               json.dumps({"cell_errors": errors, "seconds": round(time.monotonic() - start, 1)}))
    for name in request["questions"]:
        results = answers(graded[name], env, request["cases"][name], request["check_timeout"])
        write_json(os.path.join(out, f"{name}.json"), json.dumps(results, allow_nan=True))
    write_json(os.path.join(out, "done.json"), "{}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--probe"]:
        import numpy  # noqa: F401

        import snnlib

        print(json.dumps({"uid": os.getuid(), "python": sys.version.split()[0],
                          "snnlib": os.path.dirname(snnlib.__file__)}))
    else:
        main(sys.argv[1])
