"""The code rules in otter's own autograder (Gradescope, ``otter run``): an otter plugin.

``python3 dev.py assignments grade`` checks each notebook's code with :mod:`course.rules`
before anything runs (:func:`course.grade.check_code`). otter's autograder runs the notebook
and the hidden tests in one process, where the notebook's own code could replace the checks
(``course.questions.check_in_process = ...``) before they run. :mod:`course.build` lists this
plugin in the autograder zip's ``otter_config.json``; otter runs it in its grading process,
outside the notebook's, and it applies the same check with the same function and messages:

- ``before_grading`` (after otter copies the zip's files into the submission folder, before
  anything of the submission is read or run): the folder is made what the local grader sees,
  the notebook alone. Every other uploaded file or folder is removed (a ``course/``,
  ``snnlib/`` or ``symtable.py`` of the student's would shadow the zip's on the kernel's path;
  otter unpickles a ``.OTTER_LOG`` in its own process), and ``course/`` and ``snnlib/`` are
  copied again from the zip; the output names what was removed;
- ``before_execution``: a notebook that reaches outside itself is not run (its code cells are
  emptied before otter executes it); a cell that was not checked (it does not parse, or is
  malformed) is not run either, as in the local grader, which compiles cells with Python's
  parser (otter's IPython kernel would run magics and shell commands);
- ``after_grading``: such a notebook gets 0 for every question, and an answer that uses what
  its question forbids gets 0 for that question, with the rule in the question's output and in
  the results' ``output`` (what Gradescope shows the student).

The assignment comes from the plugin's configuration (written by the build), never from the
submission.
"""
import os
import shutil
import types

import nbformat
from otter.plugins import AbstractOtterPlugin
from otter.test_files.abstract_test import TestCase, TestCaseResult

from course import grade, questions, rules, submissions


class CodeRules(AbstractOtterPlugin):
    """``{"course.otter_plugin.CodeRules": {"assignment": "01_integrate_and_fire"}}``."""

    def __init__(self, submission_path, submission_metadata, plugin_config):
        super().__init__(submission_path, submission_metadata, plugin_config)
        key = (plugin_config or {}).get("assignment")
        if key not in questions.ASSIGNMENTS:
            raise ValueError(f"course.otter_plugin.CodeRules: unknown assignment {key!r} "
                             "in otter_config.json")
        self.task = {"questions": questions.questions(key)}
        self.refused = None  # {question: message}, set before the notebook runs
        self.output = ""     # what the student reads first
        self.removed = []    # uploaded files that are not the notebook, removed before grading

    def before_grading(self, config):
        folder = os.path.dirname(os.path.abspath(self.submission_path))
        files = os.path.join(folder, os.pardir, "source", "files")
        notebook = os.path.basename(self.submission_path)
        # otter's own: the package marker it writes and the tests it copied from the zip
        kept = {notebook, "__init__.py", "tests"}
        removed = []
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            shipped = os.path.join(files, name)
            if name in kept:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            if os.path.exists(shipped):  # the zip's course/ and snnlib/, fresh
                copy = shutil.copytree if os.path.isdir(shipped) else shutil.copy
                copy(shipped, path)
            else:
                removed.append(name)
        open(os.path.join(folder, "__init__.py"), "w").close()  # empty, as otter writes it
        self.removed = removed

    def before_execution(self, submission):
        if isinstance(submission, str):  # otter wraps scripts in a notebook; never a str here
            raise ValueError("course.otter_plugin.CodeRules grades notebooks only")
        wide, per_question, _ = grade.check_code(types.SimpleNamespace(nb=submission), self.task)
        cells = submissions.code_cells(submission)
        checked = {index for index, _ in cells} - {
            index for index, _ in rules.Notebook(cells).unparsed}
        if wide:
            self.refused = {name: grade.refused_notebook(wide) for name in self.task["questions"]}
            self.output = "The notebook was not run, every question gets 0: " \
                          + grade.refused_notebook(wide)
        else:
            self.refused = {name: grade.refused_answer(found)
                            for name, found in per_question.items()}
            self.output = "\n".join(f"{name}: {message}" for name, message in self.refused.items())
        for index, cell in enumerate(submission["cells"]):
            if cell.get("cell_type") == "code" and (wide or index not in checked):
                cell["source"] = ""
                cell["outputs"] = []
        # the local grader runs plain Python; in IPython a bare name such as `env` or `ls`
        # would run a magic, so the kernel gets no automagic and no autocall
        submission["cells"].insert(0, nbformat.v4.new_code_cell(
            "get_ipython().automagic = False\nget_ipython().autocall = 0"))
        if self.removed:
            note = "Not graded, removed from the submission (the notebook alone is graded): " \
                   + ", ".join(self.removed)
            self.output = note + ("\n" + self.output if self.output else "")
        return submission

    def after_grading(self, results):
        if self.refused is None:  # the notebook was never checked: nothing counts
            self.refused = {name: "not graded: the code rules did not run"
                            for name in self.task["questions"]}
            self.output = "not graded: the code rules did not run"
        for name, message in self.refused.items():
            test = results.results.get(name)
            if test is None:
                continue
            rule = TestCase("code rules", "", True, 0, None, None)  # hidden: the public
            # tests still say what they checked; the student reads the rule in the output
            test.test_case_results = [TestCaseResult(rule, message, False)] + list(
                test.test_case_results)
            test.update_score(0)
        if self.output:
            results.set_output(self.output)
