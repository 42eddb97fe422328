"""Project glue around otter-grader for the course assignments (not part of ``snnlib``).

otter-grader does the authoring: one instructor notebook per assignment in otter's format,
``otter assign`` for the student and autograder versions, public tests that students run with
``grader.check(...)``, hidden tests, and the Gradescope autograder zip. This package adds only

- :mod:`course.build`: run otter assign for every source, lay out the release and the bundle;
- :mod:`course.questions`: each question's inputs (drawn at grading time), references
  (computed with ``snnlib``) and checks; the hidden tests call them too;
- :mod:`course.rules`: what an answer's code may use (no ``snnlib.sim.simulator`` to "write" a neuron,
  no files, no ``exec``...), read from its syntax tree;
- :mod:`course.grade`, :mod:`course.sandbox`, :mod:`course.launcher`, :mod:`course.runner`:
  local grading in which each notebook runs in its own sandbox and only returns data; the
  scores are computed here, outside the student's process (otter's own grading runs the hidden
  tests inside it, where a student can fool them);
- :mod:`course.otter_plugin`: the same code rules in otter's own autograder (Gradescope), as an
  otter plugin that :mod:`course.build` adds to the autograder zip;
- :mod:`course.pdf`: a PDF of the manually graded answers (otter's filter, Chromium).

It is not installed with ``snnlib`` and a graded notebook may not import it. Use it through
``python3 dev.py assignments build | check | grade | pdf`` (see ``assignments/README.md``).
"""
