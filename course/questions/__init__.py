"""The graded questions: inputs drawn at grading time, answers, references, comparisons.

Each assignment module (``a01_integrate_and_fire``...) defines

- ``QUESTIONS``: one :class:`Question` per autograded question of the instructor notebook (the
  points and manual questions come from the notebook's ``# BEGIN QUESTION`` cells);
- ``draw(rng)``: the inputs of every question, ``{question: [case, ...]}``, drawn with a fresh
  seed each grading run (trusted process);
- ``expected(cases)``: what ``snnlib`` computes for them (trusted process; never importable by
  the student's code, which may not import this package).

A :class:`Question` says how to call the student's functions on a case (``answer``, run in the
sandbox: it returns plain data) and how to judge the returned data (``compare``, trusted: it
validates type, shape, finiteness and range before comparing).

The same pieces run in one process for otter's own autograder (Gradescope, ``otter run``):
:func:`check_in_process`, called by the hidden tests of the notebooks.
"""
import importlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from course import wire

ASSIGNMENTS = {
    "01_integrate_and_fire": "course.questions.a01_integrate_and_fire",
    "02_percentile_normalization": "course.questions.a02_percentile_normalization",
    "03_spike_budget": "course.questions.a03_spike_budget",
}


class Wrong(AssertionError):
    """A wrong or invalid answer; the message says what was expected and what came back."""


@dataclass(frozen=True)
class Question:
    """One autograded question.

    Attributes
    ----------
    name : str
        The question's name in the notebook (``q1_if_subtract``), a gradebook column.
    functions : tuple of str
        The functions the student writes; the answer's code starts from them.
    allowed : tuple of str
        Dotted-name prefixes the answer's code may use (see :mod:`course.rules`).
    answer : callable
        ``answer(env, case) -> data``: calls the student's functions from the notebook's
        namespace ``env`` (in the sandbox).
    compare : callable
        ``compare(case, expected, got) -> str``: a short success message, or raises
        :class:`Wrong` (trusted).
    denied : tuple of str
        Exceptions inside ``allowed``.
    """

    name: str
    functions: tuple
    allowed: tuple
    answer: Callable
    compare: Callable
    denied: tuple = ()


def load(key):
    """The module of an assignment (``draw``, ``expected``, ``QUESTIONS``)."""
    return importlib.import_module(ASSIGNMENTS[key])


def sandbox_cases(module, cases, expected):
    """The cases as the sandbox receives them (a module may derive them from its references,
    e.g. the original weights of the network it normalized; never the answers)."""
    hook = getattr(module, "sandbox_cases", None)
    return hook(cases, expected) if hook else cases


def questions(key):
    return {q.name: q for q in load(key).QUESTIONS}


def fresh_rng(seed=None):
    """The generator for one grading run; ``seed=None`` draws one nobody can predict."""
    seed = secrets.randbits(63) if seed is None else int(seed)
    return np.random.default_rng(seed), seed


# --------------------------------------------------------------------------------------------
# Validation helpers for compare functions (trusted side): never trust a type or a shape
# --------------------------------------------------------------------------------------------

def as_number(label, got, *, low=-math.inf, high=math.inf):
    """A finite float within [low, high] from a returned scalar (a 0-d array is fine)."""
    if isinstance(got, np.ndarray) and got.shape == () and got.dtype.kind in "iuf":
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise Wrong(f"{label}: expected a number, got {describe(got)}")
    try:
        value = float(got)
    except OverflowError:
        raise Wrong(f"{label}: expected a finite number, got an integer too large") from None
    if not math.isfinite(value):
        raise Wrong(f"{label}: expected a finite number, got {value}")
    if not low <= value <= high:
        raise Wrong(f"{label}: {value:.6g} is out of range [{low:g}, {high:g}]")
    return value


def as_array(label, got, shape, *, integer=False):
    """A finite float64 array of exactly ``shape`` (integer-valued if asked)."""
    if isinstance(got, list):
        try:
            got = np.array(got, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise Wrong(f"{label}: expected an array of numbers, got a list of other things") \
                from None
    if not isinstance(got, np.ndarray) or got.dtype.kind not in "biuf":
        raise Wrong(f"{label}: expected an array of numbers, got {describe(got)}")
    if got.shape != tuple(shape):
        raise Wrong(f"{label}: expected shape {tuple(shape)}, got {got.shape}")
    values = got.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise Wrong(f"{label}: {int(np.sum(~np.isfinite(values)))} values are not finite")
    if integer and not np.array_equal(values, np.round(values)):
        raise Wrong(f"{label}: expected whole numbers of spikes")
    return values


def close(label, expected, got, *, rtol=0.0, atol=0.0, what=""):
    """Fail with 'expected X (± tol), got Y' unless the float arrays are close."""
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    bad = ~(np.abs(got - expected) <= atol + rtol * np.abs(expected))
    if not np.any(bad):
        return
    tol = f"±{rtol:g} relative" if rtol else f"±{atol:g}"
    if expected.ndim == 0:
        raise Wrong(f"{label}: expected {what}{float(expected):.6g} ({tol}), got {float(got):.6g}")
    where = np.unravel_index(int(np.argmax(bad)), bad.shape)
    raise Wrong(f"{label}: {int(bad.sum())} of {bad.size} values differ; first at index "
                f"{tuple(int(i) for i in where)}: expected {expected[where]:.6g} ({tol}), "
                f"got {got[where]:.6g}")


def describe(value):
    """A short, safe description of a returned value (never its full repr)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (list, dict, str)):
        return f"a {type(value).__name__} of length {len(value)}"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return f"{type(value).__name__} {value:.6g}" if math.isfinite(float(value)) else repr(value)
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------------------------
# One process (otter's autograder: Gradescope or `otter run`)
# --------------------------------------------------------------------------------------------

def check_in_process(key, name, env):
    """Grade one question in the student's own process (the hidden tests of the notebooks).

    This is what otter's autograder runs; it draws fresh inputs and compares with ``snnlib``
    like the local grader, and applies the code rules to the submitted notebook when it finds
    it in the working directory. It runs in the student's process; the autograder zip's plugin
    (:mod:`course.otter_plugin`) applies the same rules before the notebook runs, so a notebook
    that could replace this function is not run. ``python3 dev.py assignments grade`` (a sandbox
    per notebook) is still the trusted path (see ``assignments/README.md``).
    """
    from course import rules, submissions

    question = questions(key)[name]
    found = submissions.find_submission_here()
    if found is not None:
        notebook = rules.Notebook(found)
        problems = rules.notebook_findings(notebook) + rules.question_findings(
            notebook, question.functions, question.allowed, question.denied)
        if problems:
            raise Wrong("not allowed in this answer: " + "; ".join(map(str, problems[:5])))
    module = load(key)
    rng, _ = fresh_rng()
    cases = {name: module.draw(rng)[name]}
    expected = module.expected(cases)
    cases = sandbox_cases(module, cases, expected)
    for case, reference in zip(cases[name], expected[name]):
        got = wire.loads(wire.dumps(question.answer(env, case)))
        question.compare(case, reference, got)
