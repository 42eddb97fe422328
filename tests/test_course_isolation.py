"""The sandbox alone: attacks on the grader and on other students, with the code rules off.

tests/test_course.py shows that the code rules refuse these notebooks before they run. Here
they run (``code_rules=False``), so only the sandbox stands between them and the other
submissions of the same run: a blank notebook and a solution graded after them keep their true
scores, the submissions folder is unchanged, no background process survives, and the run ends
with its gradebook. These notebooks kill every process they can see, so they only run where
each run gets a user of its own (as root); elsewhere those tests are skipped, with the reason.
Then the time limits: loops in cells and in answers.
"""
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import course_helpers as h
import pytest

from course import grade, sandbox
from course.sandbox import Limits


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def own_user_available():
    """Whether each run gets a user of its own here (root, and a Python that user can run)."""
    run_dir = tempfile.mkdtemp(prefix="course-test-probe-")
    os.chmod(run_dir, 0o711)
    try:
        return sandbox.choose_isolation(run_dir, [])
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    isolation = own_user_available()
    if not isolation.drop_user:
        # these notebooks kill every process they can see: never without a user of their own
        pytest.skip(f"runs only get this isolation here: {isolation.describe()}")
    folder = tmp_path_factory.mktemp("isolated")
    marker = Path(tempfile.mkdtemp(prefix="course-test-marker-")) / "alive"
    marker.parent.chmod(0o777)  # where a sandboxed process can write
    # the attacks come first (file names sort before the victims): "later students"
    h.write(h.add_cell(h.student(h.A1), f"""
import subprocess, sys
script = '''
import glob, os, time
for i in range(40):
    try:
        open({str(marker)!r}, "w").write(str(time.time()))
    except OSError:
        pass
    for path in glob.glob("/tmp/snnlib-grade-*/run-*/out/*.json") + glob.glob({str(folder)!r} + "/*"):
        try:
            open(path, "w").write("[]")
        except OSError:
            pass
    time.sleep(0.25)
'''
subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
"""), folder, "01_a_background.ipynb")
    h.write(h.add_cell(h.student(h.A1), """
import os, signal
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
os.kill(os.getppid(), signal.SIGKILL)
"""), folder, "01_b_kill_everyone.ipynb")
    h.write(h.add_cell(h.student(h.A1), f"""
import glob, os
folders = {{{str(folder)!r}}}
for pid in os.listdir("/proc"):
    try:
        folders.add(os.readlink(f"/proc/{{pid}}/cwd"))
        folders.update(open(f"/proc/{{pid}}/cmdline").read().split("\\0"))
    except OSError:
        pass
for name in folders:
    for path in glob.glob(os.path.join(name, "*.ipynb")):
        try:
            open(path, "w").write("{{}}")
        except OSError:
            pass
"""), folder, "01_c_other_students.ipynb")
    h.write(h.add_cell(h.student(h.A1), """
import snnlib, json
source = snnlib.__file__.replace("snnlib/__init__.py", "assignments/source/01_integrate_and_fire.ipynb")
for cell in json.load(open(source))["cells"]:
    if cell["cell_type"] == "code" and "def " in "".join(cell["source"]):
        exec("".join(cell["source"]), globals())
"""), folder, "01_d_exec_source.ipynb")
    h.write(h.add_cell(h.student(h.A1), """
import json, os
fake = [{"value": {"__array__": {"dtype": "<i8", "shape": [1], "data": "AAAAAAAAAAA="}}}] * 3
for name in ["q1_if_subtract", "q2_if_variants", "q3_rate_error"]:
    open(os.path.join("..", "out", name + ".json"), "w").write(json.dumps(fake))
open(os.path.join("..", "out", "done.json"), "w").write("{}")
os.symlink("/dev/zero", os.path.join("..", "out", "status.json.tmp"))
os._exit(0)
"""), folder, "01_e_forge_files.ipynb")
    h.write(h.add_cell(h.student(h.A1), """
import sys
runner = sys.modules["course.runner"]
runner.answers = lambda *args, **kwargs: [{"value": 7}] * 3
"""), folder, "01_f_patch_runner.ipynb")
    h.write(h.student(h.A1), folder, "01_x_blank.ipynb")
    h.write(h.solved(h.A1), folder, "01_z_solution.ipynb")
    before = digest(folder)
    start = time.monotonic()
    results, info = grade.grade([folder], limits=Limits(timeout=60, cell_timeout=30,
                                                        check_timeout=30), code_rules=False)
    seconds = time.monotonic() - start
    time.sleep(1.5)  # a surviving background process would touch the marker meanwhile
    started = marker.exists()
    touched = started and marker.stat().st_mtime > time.time() - 1.0
    return dict(results={r.file.rsplit("/", 1)[-1][:-6]: r for r in results}, info=info,
                changed=before != digest(folder), started=started, touched=touched,
                seconds=seconds)


def test_other_submissions_keep_their_true_scores(isolated):
    assert "own user id" in isolated["info"]["isolation"]
    results = isolated["results"]
    assert (results["01_z_solution"].status, results["01_z_solution"].points) == ("graded", 7)
    assert (results["01_x_blank"].status, results["01_x_blank"].points) == ("graded", 0)
    for name, result in results.items():
        if name[3] != "z":
            assert result.points == 0, (name, [q.message for q in result.questions])
    # the submissions were not changed on disk either, and the background process, which did
    # start, did not outlive its run
    assert not isolated["changed"]
    assert isolated["started"] and not isolated["touched"]


def test_the_instructor_source_is_hidden(isolated):
    if "namespaces" not in isolated["info"]["isolation"].split(";")[0]:
        pytest.skip("without a mount namespace the sources are only protected by the code rules")
    exec_source = isolated["results"]["01_d_exec_source"]
    assert exec_source.points == 0
    assert "FileNotFoundError" in " ".join(exec_source.cell_errors)


def test_forged_files_are_only_data(isolated):
    forged = isolated["results"]["01_e_forge_files"]
    assert forged.points == 0
    assert "expected shape" in forged.questions[0].message


# --- time limits ------------------------------------------------------------------------------

def test_loops_are_stopped_and_the_run_goes_on(tmp_path):
    # a loop at the top of the notebook: its cell is stopped, the others still run
    stopped = tmp_path / "stopped"
    swallowing = tmp_path / "swallowing"
    h.write(h.edit(h.solved(h.A1), "import snnlib", "import snnlib\nwhile True:\n    pass"),
            stopped, "01_stuck.ipynb")
    # a loop inside an answer: that question's calls are stopped, the others pass
    h.write(h.edit(h.solved(h.A1), "    return float(np.max(np.abs(measured - ideal)))",
                   "    while True:\n        pass"), stopped, "01_looping.ipynb")
    # these two finish well inside the wall-clock limit, which is generous because a loaded
    # 2-core CI machine needs several seconds just to import TensorFlow in each sandbox
    results, _ = grade.grade([stopped], limits=Limits(timeout=300, cell_timeout=3,
                                                      check_timeout=3), jobs=2)
    results = {r.file.rsplit("/", 1)[-1]: r for r in results}
    stuck = results["01_stuck.ipynb"]
    assert stuck.points == 7 and "stopped after 3 s" in stuck.cell_errors[0]
    looping = results["01_looping.ipynb"]
    assert looping.points == 5 and looping.status == "graded"
    assert "did not return within 3 s" in looping.questions[2].message
    # a loop that swallows the time limit: the whole run is stopped at the wall-clock limit
    h.write(h.add_cell(h.solved(h.A1), "while True:\n    try:\n        while True:\n"
                                       "            pass\n    except BaseException:\n        pass"),
            swallowing, "01_swallows.ipynb")
    results, _ = grade.grade([swallowing], limits=Limits(timeout=15, cell_timeout=3,
                                                         check_timeout=3), jobs=1)
    swallows = results[0]
    assert swallows.status == "incomplete" and "wall-clock limit" in swallows.error
    assert swallows.points == 0


def test_a_sandbox_cannot_reach_the_network(tmp_path):
    h.write(h.add_cell(h.solved(h.A1), """
import socket
s = socket.socket()
s.settimeout(2)
s.connect(("1.1.1.1", 80))
"""), tmp_path, "01_network.ipynb")
    results, info = grade.grade([tmp_path], code_rules=False)
    if "namespaces" not in info["isolation"].split(";")[0]:
        pytest.skip("no network namespace here")
    assert results[0].points == 7
    assert "Network is unreachable" in " ".join(results[0].cell_errors)
