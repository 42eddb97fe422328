"""The course assignments: generated student versions, and the autograder end to end.

Grading runs real notebooks in fresh kernels, so the slow parts (the three solution notebooks)
are graded once per module and shared.
"""
import json

import nbformat
import pytest

from snnlib.course import ASSIGNMENTS
from snnlib.course import generate as gen
from snnlib.course import grade
from snnlib.course.__main__ import main

A1 = gen.SOURCE_DIR / "01_integrate_and_fire.ipynb"
A2 = gen.SOURCE_DIR / "02_percentile_normalization.ipynb"


def edited_copy(source, tmp_path, replacements, name=None):
    """A copy of a source notebook with some lines of code replaced (each must be found)."""
    nb = nbformat.read(source, as_version=4)
    for old, new in replacements:
        cells = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        assert len(cells) == 1, f"{old!r} is in {len(cells)} cells"
        cells[0].source = cells[0].source.replace(old, new)
    path = tmp_path / (name or source.name)
    nbformat.write(nb, path)
    return path


def by_id(result):
    return {q.id: q for q in result.questions}


@pytest.fixture(scope="module")
def solutions():
    """The instructor notebooks (with solutions), graded: path name -> NotebookResult."""
    return {path.name: grade.grade_notebook(path, notebook_timeout=240)
            for path in gen.sources()}


# --- one source of truth --------------------------------------------------------------------

def test_student_versions_are_up_to_date_and_stubs_match():
    # regenerating changes nothing, every region has its stub, no solution text is left
    assert gen.problems() == []
    assert main(["check"]) == 0


def test_every_assignment_has_a_source_and_a_student_version():
    names = [p.stem for p in gen.sources()]
    assert names == sorted(ASSIGNMENTS) and len(names) >= 3
    for name in names:
        assert (gen.STUDENT_DIR / f"{name}.ipynb").exists()


def test_stub_replaces_region_keeping_signature_and_hint():
    code = ('def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    # HINT: add "one".\n'
            '    return x + 1\n    ### END SOLUTION\n\nprint(f)')
    assert gen.stub_code(code) == ('def f(x):\n    """Doc."""\n    raise NotImplementedError('
                                   '"Student exercise: add \\"one\\".")\n\nprint(f)')


@pytest.mark.parametrize("code, complaint", [
    ("### BEGIN SOLUTION\n# HINT: h\nx = 1\n", "without ### END"),
    ("x = 1\n### END SOLUTION\n", "without ### BEGIN"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "needs a '# HINT:"),
])
def test_malformed_regions_are_rejected(code, complaint):
    with pytest.raises(gen.SourceError, match=complaint):
        gen.regions(code)


def test_check_finds_stale_and_drifted_student_versions(tmp_path):
    source, student = tmp_path / "source", tmp_path / "student"
    source.mkdir()
    for path in gen.sources():
        (source / path.name).write_bytes(path.read_bytes())
    gen.generate(source, student)
    assert gen.problems(source, student) == []
    # editing inside a solution region does not change the student version
    edited_copy(A1, source, [("return spikes", "return spikes  # edited")])
    assert gen.problems(source, student) == []
    # an instructor edits a docstring without regenerating: stale
    edited_copy(A1, source, [("Number of spikes of each", "Spikes of each")])
    assert any("stale" in p for p in gen.problems(source, student))
    # a student file whose stub was replaced by code: stubs and solutions no longer match
    gen.generate(source, student)
    nb = nbformat.read(student / A1.name, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace('raise NotImplementedError("Student exercise:',
                                          'print("')
    nbformat.write(nb, student / A1.name)
    assert any("stub(s)" in p for p in gen.problems(source, student))


# --- the autograder ---------------------------------------------------------------------------

def test_solutions_get_full_marks(solutions):
    for name, result in solutions.items():
        messages = [f"{q.id}: {q.message}" for q in result.questions if q.points < q.max]
        assert result.points == result.max_points > 0, f"{name}: {messages}"
        assert not result.cell_errors, f"{name}: {result.cell_errors}"


def test_student_versions_get_zero_with_not_implemented(tmp_path, capsys):
    gradebook = tmp_path / "grades.csv"
    assert main(["grade", str(gen.STUDENT_DIR), "--csv", str(gradebook),
                 "--json", str(tmp_path / "grades.json")]) == 0
    results = json.loads((tmp_path / "grades.json").read_text())
    assert len(results) == len(ASSIGNMENTS)
    for result in results:
        assert result["points"] == 0 and result["max_points"] > 0
        for question in result["questions"]:
            assert "NotImplementedError: Student exercise:" in question["message"], question
    out = capsys.readouterr().out
    assert "summary" in out and out.count("0/") == len(ASSIGNMENTS)
    assert gradebook.read_text().splitlines()[0].startswith("path,assignment,points,max_points")


def test_wrong_answers_get_partial_score_and_say_why(tmp_path):
    # two bugs: max_spikes_per_step ignored (q2), rate in spikes per step, not per second (q3)
    path = edited_copy(A1, tmp_path, [
        ("n = np.floor(v) if max_spikes_per_step is None else (v >= 1).astype(np.float64)",
         "n = np.floor(v)"),
        ("measured = counts / (n_steps * dt)", "measured = counts / n_steps"),
    ])
    result = grade.grade_notebook(path, notebook_timeout=60)
    questions = by_id(result)
    assert result.points == 3 and result.max_points == 7
    assert questions["q1_if_subtract"].points == 3
    assert questions["q2_if_variants"].points == 0
    assert "spikes differ from snnlib" in questions["q2_if_variants"].message
    assert "max_spikes_per_step': 1" in questions["q2_if_variants"].message
    assert questions["q3_rate_error"].points == 0
    assert "expected error = " in questions["q3_rate_error"].message
    assert "relative), got " in questions["q3_rate_error"].message


def test_wrong_percentile_gets_partial_score(tmp_path):
    # the percentile taken over all activations, zeros included: λ too small in q1 and q2
    path = edited_copy(A2, tmp_path, [("    values = values[values > 0]\n", "")])
    result = grade.grade_notebook(path, notebook_timeout=120)
    questions = by_id(result)
    assert (result.points, result.max_points) == (2, 7)
    assert questions["q3_normalize_weights"].points == 2
    assert "expected λ = " in questions["q1_layer_lambda"].message
    assert "lambda_table: layer conv0: expected λ_percentile = " in questions["q2_lambda_table"].message


def test_syntax_error_is_a_zero_for_its_questions(tmp_path):
    path = edited_copy(A1, tmp_path, [("def max_rate_error(current", "def max_rate_error(current,,")])
    result = grade.grade_notebook(path, notebook_timeout=60)
    questions = by_id(result)
    # the other questions are still graded
    assert questions["q1_if_subtract"].points == 3 and questions["q2_if_variants"].points == 2
    message = questions["q3_rate_error"].message
    assert questions["q3_rate_error"].points == 0
    assert "NameError: max_rate_error is not defined" in message and "SyntaxError" in message


def test_infinite_loop_is_stopped_by_the_time_limits(tmp_path):
    # a loop at the top of the notebook: the notebook limit stops it, the rest is not run
    stuck = edited_copy(A1, tmp_path, [("import snnlib", "import snnlib\nwhile True:\n    pass")],
                        name="01_stuck.ipynb")
    result = grade.grade_notebook(stuck, notebook_timeout=5)
    assert result.points == 0 and "exceeded 5 s" in result.error
    assert all("not defined" in q.message for q in result.questions)
    # a loop inside a function: the cell that calls it is stopped at the cell limit, and the
    # question's check at the check limit; the other questions still pass
    looping = edited_copy(A1, tmp_path, [("    return float(np.max(np.abs(measured - ideal)))",
                                          "    while True:\n        pass")],
                          name="01_looping.ipynb")
    result = grade.grade_notebook(looping, notebook_timeout=60, cell_timeout=5, check_timeout=5)
    questions = by_id(result)
    assert result.points == 5, result.questions
    assert "cell exceeded 5 s" in result.error
    assert "did not finish within 5 s" in questions["q3_rate_error"].message


def test_unreadable_notebook_is_graded_zero(tmp_path):
    path = tmp_path / "01_broken.ipynb"
    path.write_text("{ not json")
    result = grade.grade_notebook(path)
    assert result.points == 0 and result.max_points == 7
    assert "cannot read the notebook" in result.questions[0].message
