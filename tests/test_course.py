"""The course assignments end to end: otter builds them, the grader grades real notebooks.

One grading run (``graded``, shared by the tests below) holds the solutions, the blank student
versions, wrong answers, and every attack of issue 13, built from the student versions: the
attacks get no more than a blank notebook, and everyone else keeps their true score. The
attacks on other students, with the code rules turned off so that only the sandbox stands in
their way, are in tests/test_course_isolation.py.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import course_helpers as h
import nbformat
import pytest

from course import build
from course.__main__ import main

FULL = {h.A1: 7, h.A2: 7, h.A3: 5}  # automatic points; assignment 3 has 1 more, read by hand


# --- otter builds the release, the bundle and the book's copies ----------------------------

def test_book_copies_are_what_otter_assign_makes():
    # the committed student versions are otter assign's output for the sources, no solution
    # or hidden test leaked, and every autograded question has its checks in course/questions
    assert build.problems(built=h.built()) == []


def test_release_has_no_solutions_and_the_bundle_has_the_hidden_tests():
    out = h.built()
    for key in FULL:
        student = (out / "student" / f"{key}.ipynb").read_text()
        autograder = (out / "autograder" / key / f"{key}.ipynb").read_text()
        assert "BEGIN SOLUTION" not in student and "hidden=True" not in student
        assert "raise NotImplementedError" in student and "grader.check(" in student
        assert "np.floor(v)" in autograder or "return {" in autograder or "layer_lambda" in autograder
        with zipfile.ZipFile(out / "autograder" / key / f"{key}-autograder.zip") as zf:
            names = zf.namelist()
            tests = "".join(zf.read(n).decode() for n in names if n.startswith("tests/"))
        assert "files/course/questions/__init__.py" in names
        assert "files/snnlib/sim/simulator.py" in names
        assert "hidden=True" in tests and "check_in_process" in tests
        assert "run_autograder" in names and "environment.yml" in names
        # the code rules ride in the zip: otter's plugin, importable by the zip's run_otter.py
        assert "files/course/otter_plugin.py" in names
        config = json.loads((out / "autograder" / key / "otter_config.json").read_text())
        assert config["plugins"] == [{"course.otter_plugin.CodeRules": {"assignment": key}}]
        with zipfile.ZipFile(out / "autograder" / key / f"{key}-autograder.zip") as zf:
            assert json.loads(zf.read("otter_config.json")) == config
            assert '"files"' in zf.read("run_otter.py").decode()
    # the public tests ride in the student notebook's metadata (grader.check works offline)
    nb = nbformat.read(out / "student" / f"{h.A1}.ipynb", as_version=4)
    assert set(nb.metadata.otter.tests) == {"q1_if_subtract", "q2_if_variants", "q3_rate_error"}
    assert nb.metadata.otter.assignment_name == h.A1


def test_public_tests_run_offline_in_the_student_notebook(tmp_path, monkeypatch):
    # grader.check reads the public tests from the saved notebook: the stub fails them, the
    # solution passes
    import numpy as np
    import otter

    monkeypatch.chdir(tmp_path)
    h.write(h.student(h.A1), tmp_path, f"{h.A1}.ipynb")
    grader = otter.Notebook(f"{h.A1}.ipynb")
    env = {"np": np}
    exec(h.cell_with(h.student(h.A1), "def if_layer(").source, env)
    assert not grader.check("q1_if_subtract", env).passed_all
    exec(h.cell_with(h.solved(h.A1), "def if_layer(").source, env)
    assert grader.check("q1_if_subtract", env).passed_all
    assert grader.check("q2_if_variants", env).passed_all


# --- one grading run with everything --------------------------------------------------------

def patch_checks():
    """Replace the hidden tests' check before it runs: otter's autograder runs them in the
    notebook's process, where this gave a blank notebook 7 of 7 until the code rules ran there
    (the check cells come after the answers, so the patch goes near the top)."""
    return h.add_cell(h.student(h.A1), """
import course.questions
course.questions.check_in_process = lambda *args, **kwargs: None
""", index=3)


def attacks(folder, marker):
    """Every attack of issue 13 (and a few more), each a student notebook with cells added."""
    a1, a2, a3 = h.student(h.A1), h.student(h.A2), h.student(h.A3)
    notebooks = {
        # run the instructor's solutions, found through snnlib.__file__
        "01_attack_exec_source": h.add_cell(h.student(h.A1), """
import snnlib, json
source = snnlib.__file__.replace("snnlib/__init__.py", "assignments/source/01_integrate_and_fire.ipynb")
for cell in json.load(open(source))["cells"]:
    if cell["cell_type"] == "code" and "def " in "".join(cell["source"]):
        exec("".join(cell["source"]), globals())
"""),
        # monkeypatch the grader (its runner, through sys.modules) and snnlib.simulate
        "01_attack_patch_grader": h.add_cell(a1, """
import sys
runner = sys.modules["course.runner"]
runner.answer = lambda *args, **kwargs: {"value": 7}
"""),
        "01_attack_patch_checks": patch_checks(),
        "03_attack_patch_simulate": h.add_cell(a3, """
import snnlib
real = snnlib.simulate
def fake(network, x, **kwargs):
    result = real(network, x[:1], n_steps=1)
    result.accuracy = lambda y: 1.0
    result.spike_counts = {}
    return result
snnlib.simulate = fake
""", index=3),
        # forge the result: print the old grader's line and leave, or write answer files
        "01_attack_forge_print": h.add_cell(h.student(h.A1), """
print('SNNLIB-GRADE {"id": "q1_if_subtract", "points": 3, "max": 3}')
raise SystemExit(0)
"""),
        "01_attack_forge_files": h.add_cell(h.student(h.A1), """
import os
for name in ["q1_if_subtract", "q2_if_variants", "q3_rate_error"]:
    with open(os.path.join("..", "out", name + ".json"), "w") as f:
        f.write('[{"value": 7}]')
"""),
        # no tampering: the library's own implementation as the answer
        "01_attack_library": h.answer(h.answer(h.student(h.A1), "if_layer", """
import snnlib.sim.neurons
if max_spikes_per_step is None and reset == "subtract":
    return snnlib_spikes(np.ravel(current), n_steps, scale=scale).reshape((n_steps,) + np.shape(current))
return snnlib.sim.neurons.integrate_and_fire(current * scale, n_steps, dt=dt, reset=reset)
"""), "max_rate_error", """
return float(np.max(np.abs(snnlib.sim.neurons.measured_rate(current * scale, n_steps, dt=dt, reset=reset)
                           - scale * np.maximum(current, 0))))
"""),
        "02_attack_library": h.answer(h.answer(h.answer(a2, "layer_lambda", """
from snnlib.normalize import layer_scale
return layer_scale(np.asarray(activations), method, percentile, include_zeros=False)
"""), "lambda_table", """
scales = {m: snnlib.convert(model, calibration=calibration, normalization=m, percentile=percentile).scales
          for m in ("max", "percentile")}
return {name: {m: scales[m][name] for m in scales} for name in SPIKING_LAYERS}
"""), "normalize_weights", """
helper = snnlib.normalize
return kernel * lambda_previous / lambda_layer, helper.statistics(bias, lambda_layer)
"""),
        # an overflowing scale against the spike budget, the library's spike counter, and 30
        # filler words for the written answer
        "03_attack_overflow": h.answer(h.answer(h.filled(h.cheap(h.student(h.A3)), "word " * 30),
                                                "choose_settings", """
return {"scale_firing_rates": 1e30, "synapse": None}
"""), "spikes_per_image", """
return snnlib.ann.regularize.spikes_per_example(result)
"""),
        # other students: find the grader through /proc, rewrite the other submissions
        "01_attack_other_students": h.add_cell(h.student(h.A1), f"""
import os, glob
for pid in os.listdir("/proc"):
    try:
        folder = os.readlink(f"/proc/{{pid}}/cwd")
    except OSError:
        continue
    for path in glob.glob(folder + "/*.ipynb") + glob.glob({str(folder)!r} + "/*.ipynb"):
        open(path, "w").write("{{}}")
"""),
        # a detached background process that outlives its notebook and zeroes later results
        "01_attack_background": h.add_cell(h.student(h.A1), f"""
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1); open({str(marker)!r}, 'w')"],
                 start_new_session=True)
"""),
        # kill the grader
        "01_attack_kill_grader": h.add_cell(h.student(h.A1), """
import os, signal
os.kill(os.getppid(), signal.SIGKILL)
"""),
        # allowed code that runs: memory until the limit, 300 MB of output
        "01_attack_memory": h.add_cell(h.student(h.A1), """
blocks = []
while True:
    blocks.append(np.empty(10**8))
"""),
        "01_attack_print": h.add_cell(h.student(h.A1), """
for i in range(300):
    print("x" * 10**6)
"""),
    }
    # public tests in the metadata run arbitrary code when grader.check runs them; grading
    # never runs them
    forged = h.student(h.A1)
    for name in forged.metadata.otter.tests:
        forged.metadata.otter.tests[name] = "print('hacked')\nOK_FORMAT = False\nname = 'x'\npoints = 99\n"
    notebooks["01_attack_public_tests"] = forged
    paths = [h.write(nb, folder, f"{name}.ipynb") for name, nb in notebooks.items()]
    # malformed metadata: otter's and the old grader's keys as strings and lists, forged points
    for name, metadata in [("01_attack_metadata_string", {"otter": "x", "snnlib_course": "y"}),
                           ("01_attack_metadata_list", {"otter": [1], "snnlib_course": [2]}),
                           ("01_attack_metadata_points",
                            {"otter": {"assignment_name": h.A1, "points": "3"},
                             "snnlib_course": {"assignment": h.A1, "points": float("nan")}})]:
        nb = json.loads(nbformat.writes(h.student(h.A1)))
        nb["metadata"] = metadata
        paths.append(h.write_json(nb, folder, f"{name}.ipynb"))
    # not notebooks at all: not graded, and counted in the exit status
    (folder / "01_attack_dev_zero.ipynb").symlink_to("/dev/zero")
    (folder / "01_attack_not_json.ipynb").write_text("{ not json")
    return paths


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """One grading run through the command line: (results by file stem, exit status, CSV)."""
    folder = tmp_path_factory.mktemp("submissions")
    marker = Path(tempfile.mkdtemp(prefix="course-test-marker-")) / "background-was-here"
    os.chmod(marker.parent, 0o777)  # where a sandboxed process could write
    for key in FULL:
        h.write(h.solved(key), folder, f"{key[:2]}_solution.ipynb")
        h.write(h.student(key), folder, f"{key[:2]}_blank.ipynb")
    # wrong answers: partial marks, and messages that say why
    h.write(h.edit(h.edit(h.solved(h.A1),
                          "n = np.floor(v) if max_spikes_per_step is None else (v >= 1).astype(np.float64)",
                          "n = np.floor(v)"),
                   "measured = counts / (n_steps * dt)", "measured = counts / n_steps"),
            folder, "01_wrong.ipynb")
    h.write(h.edit(h.solved(h.A2), "    values = values[values > 0]\n", ""), folder, "02_wrong.ipynb")
    h.write(h.edit(h.solved(h.A1), "def max_rate_error(current", "def max_rate_error(current,,"),
            folder, "01_syntax_error.ipynb")
    metadata = json.loads(nbformat.writes(h.solved(h.A1)))
    metadata["metadata"] = {"otter": {"assignment_name": h.A1, "points": 100}}
    h.write_json(metadata, folder, "01_solution_forged_points.ipynb")
    attacks(folder, marker)
    csv_path, json_path = folder.parent / "grades.csv", folder.parent / "grades.json"
    status = main(["grade", str(folder), "--csv", str(csv_path), "--json", str(json_path),
                   "--jobs", "2"])
    results = {Path(r["file"]).stem: r for r in json.loads(json_path.read_text())["results"]}
    return dict(results=results, status=status, csv=csv_path.read_text(), marker=marker,
                info=json.loads(json_path.read_text()))


def points(result):
    return {q["name"]: q["points"] for q in result["questions"]}


def messages(result):
    return {q["name"]: q["message"] for q in result["questions"]}


def test_solutions_get_full_marks_and_blanks_zero(graded):
    for key, full in FULL.items():
        solution, blank = graded["results"][f"{key[:2]}_solution"], graded["results"][f"{key[:2]}_blank"]
        assert (solution["status"], solution["points"], solution["max_points"]) == \
            ("graded", full, full), messages(solution)
        assert (blank["status"], blank["points"]) == ("graded", 0), messages(blank)
    # forged points in the metadata change nothing: the instructor's notebook sets them
    forged = graded["results"]["01_solution_forged_points"]
    assert (forged["points"], forged["max_points"]) == (7, 7)


def test_written_answers_are_flagged_never_scored(graded):
    for name in ("03_solution", "03_blank", "03_attack_overflow"):
        result = graded["results"][name]
        (q3,) = [q for q in result["questions"] if q["name"] == "q3_trade_off"]
        assert q3["manual"] and q3["points"] is None
        assert any(item.startswith("q3_trade_off") for item in result["review"])
    assert "words" in messages(graded["results"]["03_solution"])["q3_trade_off"]


def test_wrong_answers_get_partial_marks_and_say_why(graded):
    wrong = graded["results"]["01_wrong"]
    assert points(wrong) == {"q1_if_subtract": 3, "q2_if_variants": 0, "q3_rate_error": 0}
    assert "spikes differ from snnlib" in messages(wrong)["q2_if_variants"]
    assert "expected error = " in messages(wrong)["q3_rate_error"]
    wrong = graded["results"]["02_wrong"]
    assert points(wrong) == {"q1_layer_lambda": 0, "q2_lambda_table": 0, "q3_normalize_weights": 2}
    assert "expected λ = " in messages(wrong)["q1_layer_lambda"]
    syntax = graded["results"]["01_syntax_error"]
    assert points(syntax) == {"q1_if_subtract": 3, "q2_if_variants": 2, "q3_rate_error": 0}
    assert messages(syntax)["q3_rate_error"].startswith("max_rate_error is not defined")
    assert "SyntaxError" in messages(syntax)["q3_rate_error"]
    assert syntax["review"] == []  # a mistake, not something for an instructor to look into


def test_every_attack_gets_no_more_than_a_blank_notebook(graded):
    results = graded["results"]
    attacked = {name: r for name, r in results.items() if "attack" in name}
    assert len(attacked) == 20
    for name, result in attacked.items():
        blank = results[f"{name[:2]}_blank"]
        if result["status"] == "not graded":
            assert result["questions"] == [] and result["points"] == 0, name
            continue
        assert result["points"] <= blank["points"] == 0, (name, messages(result))


def test_attacks_are_explained(graded):
    results = graded["results"]
    for name in ("01_attack_exec_source", "01_attack_patch_grader", "01_attack_patch_checks",
                 "03_attack_patch_simulate",
                 "01_attack_forge_files", "01_attack_other_students", "01_attack_background",
                 "01_attack_kill_grader"):
        # reaching outside the notebook: not run, every question 0, flagged for an instructor
        assert results[name]["review"][0].startswith("whole notebook (not run)"), name
        assert all(q["message"].startswith("not graded automatically")
                   for q in results[name]["questions"] if not q["manual"]), name
    library = messages(results["01_attack_library"])
    assert "uses snnlib.sim.neurons.integrate_and_fire" in library["q1_if_subtract"]
    assert "uses snnlib.simulate" in library["q1_if_subtract"]  # through the notebook's helper
    assert "uses snnlib.sim.neurons.measured_rate" in library["q3_rate_error"]
    library = messages(results["02_attack_library"])
    assert "uses snnlib.normalize.layer_scale" in library["q1_layer_lambda"]
    assert "uses snnlib.convert" in library["q2_lambda_table"]
    assert "uses snnlib.normalize" in library["q3_normalize_weights"]
    overflow = messages(results["03_attack_overflow"])
    assert "scale_firing_rates: 1e+30 is out of range" in overflow["q2_settings"]
    assert "uses snnlib.ann.regularize.spikes_per_example" in overflow["q1_spikes_per_image"]
    assert "MemoryError" in " ".join(results["01_attack_memory"]["cell_errors"])
    assert "File too large" in " ".join(results["01_attack_print"]["cell_errors"])
    for name in ("01_attack_metadata_string", "01_attack_metadata_list", "01_attack_metadata_points"):
        assert results[name]["status"] == "graded" and results[name]["max_points"] == 7
    assert "not a regular file" in results["01_attack_dev_zero"]["error"]
    assert "not JSON" in results["01_attack_not_json"]["error"]


def test_gradebook_and_exit_status(graded):
    # two files are not notebooks: the exit status says so; everything else was graded
    assert graded["status"] == 2
    rows = graded["csv"].splitlines()
    assert rows[0].startswith("file,assignment,status,points,max_points,q1_if_subtract,")
    assert len(rows) == 1 + len(graded["results"])
    assert graded["info"]["seeds"].keys() == set(FULL)
    # the background process never ran (the notebook was refused before running)
    assert not graded["marker"].exists()


# --- otter's own autograder (Gradescope), run offline as Gradescope runs it ----------------------

def gradescope(nb, folder, key=h.A1, upload=None):
    """Grade ``nb`` with the autograder zip as Gradescope does: the zip in
    ``autograder/source``, the notebook in ``autograder/submission``, then the zip's
    ``run_otter.py`` (Gradescope's ``run_autograder`` runs it in the zip's conda environment;
    here with this Python, and without the repository on the path: only the zip's ``course``)."""
    root = folder / "autograder"
    for sub in ("source", "submission", "results"):
        (root / sub).mkdir(parents=True)
    (root / "submission_metadata.json").write_text("{}")
    with zipfile.ZipFile(h.built() / "autograder" / key / f"{key}-autograder.zip") as zf:
        zf.extractall(root / "source")
    h.write(nb, root / "submission", f"{key}.ipynb")
    if upload is not None:  # more files uploaded beside the notebook
        upload(root / "submission", root / "source" / "files")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    run = subprocess.run([sys.executable, str(root / "source" / "run_otter.py")],
                         capture_output=True, text=True, cwd=folder, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    return results, {t["name"]: t for t in results["tests"]}


def test_gradescope_uses_the_same_checks(tmp_path):
    # q1 and q2 solved, q3 by the library: the hidden tests (course.questions.check_in_process)
    # give 3 + 2 of 7, the code rules (the zip's plugin) 0 for q3, and the public tests pass
    nb = h.answer(h.solved(h.A1, except_cells=["01-10"]), "max_rate_error", """
import snnlib.sim.neurons
measured = snnlib.sim.neurons.measured_rate(np.maximum(current, 0) * scale, n_steps, dt=dt, reset=reset)
return float(np.max(np.abs(measured - scale * np.maximum(current, 0))))
""")
    results, tests = gradescope(nb, tmp_path)
    assert tests["q1_if_subtract"]["score"] == 3 and tests["q2_if_variants"]["score"] == 2
    assert tests["q3_rate_error"]["score"] == 0
    assert "0: the answer uses cell 14 line 7: uses snnlib.sim.neurons.measured_rate" in \
        tests["q3_rate_error"]["output"]
    assert results["output"] == "q3_rate_error: 0: the answer uses cell 14 line 7: uses " \
                                "snnlib.sim.neurons.measured_rate"
    assert tests["Public Tests"]["status"] == "passed"


def test_gradescope_refuses_what_the_local_grader_refuses(tmp_path):
    # the local grader refuses this notebook (test_attacks_are_explained); the zip's plugin
    # refuses it before it runs, with the same rule, and nothing of it counts
    from course import rules, submissions

    nb = patch_checks()
    local = rules.notebook_findings(rules.Notebook(submissions.code_cells(nb)))
    assert any("monkeypatching" in f.text for f in local)
    results, tests = gradescope(nb, tmp_path)
    assert results["output"].startswith("The notebook was not run, every question gets 0: "
                                        "not graded automatically: the notebook uses cell 3 line 2:"
                                        " imports course (not an allowed module)")
    assert "(monkeypatching)" in results["output"]
    for name in ("q1_if_subtract", "q2_if_variants", "q3_rate_error"):
        assert tests[name]["score"] == 0
        assert "not graded automatically: the notebook uses" in tests[name]["output"]


def test_gradescope_grades_the_notebook_alone(tmp_path):
    # files uploaded beside a blank notebook: the zip's own course package with the hidden
    # tests' check made a no-op (it shadowed the zip's copy on the kernel's path: 7 of 7), a
    # module that the code rules import, and a pickle that otter would load in its own process
    def upload(submission, shipped):
        shutil.copytree(shipped / "course", submission / "course")
        with open(submission / "course" / "questions" / "__init__.py", "a") as f:
            f.write("\n\ndef check_in_process(*args, **kwargs):\n    return None\n")
        (submission / "symtable.py").write_text("raise SystemExit('uploaded code ran')\n")
        (submission / ".OTTER_LOG").write_bytes(b"not a pickle")

    results, tests = gradescope(h.student(h.A1), tmp_path, upload=upload)
    # the folder was the notebook alone (course/ fresh from the zip): the blank notebook gets
    # nothing, and the student is told what was not graded
    for name in ("q1_if_subtract", "q2_if_variants", "q3_rate_error"):
        assert tests[name]["score"] == 0, tests[name]
    assert results["output"].startswith("Not graded, removed from the submission (the notebook "
                                        "alone is graded): .OTTER_LOG, symtable.py")


# --- the PDF of the manually graded answers -----------------------------------------------

@pytest.mark.skipif(not __import__("course.pdf").pdf.find_chromium(), reason="no Chromium")
def test_manual_answers_pdf(tmp_path):
    from course import pdf

    nb = h.solved(h.A3)
    path = h.write(nb, tmp_path, "03_alice.ipynb")
    html = pdf.filtered_html(path)
    # otter's filter keeps the manual question and its answer, nothing else
    assert "Question 3: the trade-off" in html and "A short synapse averages" in html
    assert "Question 1" not in html and "def choose_settings" not in html
    target = pdf.manual_answers_pdf(path, tmp_path / "out" / "03_alice-manual.pdf")
    assert target.read_bytes().startswith(b"%PDF")
