"""What the grader runs inside the student's kernel, once per question, after the notebook.

Each call writes the question's score and message as JSON to a file the grader
(:mod:`snnlib.course.grade`) names, and prints it as a line ``SNNLIB-GRADE <json>``. An exception in the
student's code, or a wrong answer, is a zero for that question only.
"""
import json
import traceback

MARKER = "SNNLIB-GRADE "


class CheckFailed(AssertionError):
    """A wrong answer; the message says what was expected and what the student's code gave."""


def close(name, expected, got, *, rtol=0.0, atol=0.0, what=""):
    """Fail with 'expected X (± tol), got Y' unless ``got`` is close to ``expected``."""
    import numpy as np

    expected = np.asarray(expected, dtype=np.float64)
    try:
        got_array = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name}: expected a number or array, got {type(got).__name__} "
                          f"{got!r:.80}") from None
    if got_array.shape != expected.shape:
        raise CheckFailed(f"{name}: expected shape {expected.shape}, got {got_array.shape}")
    tolerance = atol + rtol * np.abs(expected)
    bad = ~(np.abs(got_array - expected) <= tolerance)
    if np.any(bad):
        tol = f"±{rtol:g} relative" if rtol else f"±{atol:g}"
        if expected.ndim == 0:
            raise CheckFailed(f"{name}: expected {what}{float(expected):.6g} ({tol}), "
                              f"got {float(got_array):.6g}")
        where = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise CheckFailed(f"{name}: {int(bad.sum())} of {bad.size} values differ; first at index "
                          f"{tuple(int(i) for i in where)}: expected {expected[where]:.6g} "
                          f"({tol}), got {got_array[where]:.6g}")


def describe(error):
    """One line for an exception raised by student code: type, message, where."""
    if isinstance(error, NotImplementedError):
        return f"not implemented yet (NotImplementedError: {error})"
    frames = traceback.extract_tb(error.__traceback__)
    student = [f for f in frames if f.filename.startswith("<") or "ipykernel" in f.filename]
    where = f" (line {student[-1].lineno} of {student[-1].name})" if student else ""
    return f"{type(error).__name__}: {error}{where}"


def run(assignment_key, question_id, namespace, out=None):
    """Grade one question against the notebook's namespace and print the result line."""
    from snnlib.course.questions import ASSIGNMENTS

    assignment = ASSIGNMENTS[assignment_key]
    question = assignment.question(question_id)
    result = dict(id=question.id, max=question.points, points=0, manual=question.manual,
                  missing=[])
    try:
        missing = [n for n in question.names if not callable(namespace.get(n))]
        if missing:
            result["missing"] = missing
            raise CheckFailed(f"NameError: {', '.join(missing)} is not defined (did its cell run "
                              "without errors?)")
        message = assignment.check_function(question)(namespace)
        result.update(points=question.points, message=message or "correct")
    except CheckFailed as error:
        result["message"] = str(error)
    except Exception as error:  # the student's code raised: a zero for this question only
        result["message"] = describe(error)
    if out is not None:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(result, f)
    print(MARKER + json.dumps(result), flush=True)


def call(function, *args, **kwargs):
    """Call a student's function; its exception becomes a failure that names the call."""
    try:
        return function(*args, **kwargs)
    except Exception as error:
        name = getattr(function, "__name__", "the function")
        raise CheckFailed(f"{name}() raised {describe(error)}") from None
