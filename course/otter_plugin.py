"""The code rules in otter's own autograder (Gradescope, ``otter run``): an otter plugin.

``python3 dev.py assignments grade`` checks each notebook's code with :mod:`course.rules`
before anything runs (:func:`course.grade.check_code`). otter's autograder runs the notebook
and the hidden tests in one process, where the notebook's own code could replace the checks
(``course.questions.check_in_process = ...``) before they run. :mod:`course.build` lists this
plugin in the autograder zip's ``otter_config.json``; otter runs it in its grading process,
outside the notebook's, and it applies the same check with the same function and messages:

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
import types

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
