"""Course assignments: one instructor source, generated student versions, an autograder.

- :mod:`snnlib.course.generate`: makes ``assignments/student/*.ipynb`` from the instructor
  notebooks ``assignments/source/*.ipynb`` (solution regions become ``NotImplementedError`` stubs)
  and checks that the committed student versions are up to date.
- :mod:`snnlib.course.grade`: runs a student's notebook in a fresh kernel with time limits, then
  the hidden checks, and reports a score per question.
- :mod:`snnlib.course.harness`: the code that runs *inside* the kernel: one call per question.
- :mod:`snnlib.course.a01_integrate_and_fire`, :mod:`~snnlib.course.a02_percentile`,
  :mod:`~snnlib.course.a03_spike_budget`: the questions and their hidden checks.

Command line (from the repository root)::

    python -m snnlib.course generate          # write the student versions
    python -m snnlib.course check             # exit 1 if they are stale or stubs drifted
    python -m snnlib.course grade PATH...     # grade notebooks or folders of them
"""
from snnlib.course.questions import ASSIGNMENTS, Question  # noqa: F401
