"""The course's fast checks: code rules, the safe data format, reading submissions, validation.

No notebook runs here; tests/test_course.py grades real notebooks.
"""
import json
import math
import os

import numpy as np
import pytest

from course import grade, rules, submissions, wire
from course.__main__ import main
from course.questions import Wrong
from course.questions import a03_spike_budget as a03

NUMPY = ("numpy", "math")


def findings(cells, functions=("f",), allowed=NUMPY, denied=()):
    notebook = rules.Notebook(list(enumerate(cells)))
    wide = [f.text for f in rules.notebook_findings(notebook)]
    answer = [f.text for f in rules.question_findings(notebook, functions, allowed, denied)]
    return wide, answer


# --- the whole notebook: what reaches outside it -------------------------------------------

@pytest.mark.parametrize("code, complaint", [
    # the attack: exec the instructor's solutions, found through snnlib.__file__
    ("import snnlib\nsrc = snnlib.__file__\nexec(open(src).read())", "__file__"),
    ("exec('x = 1')", "exec()"),
    ("eval('1')", "eval()"),
    ("f = open('/proc/self/environ')", "open()"),
    ("import json\njson.loads('1')", "imports json"),
    ("import sys\nsys.modules['numpy']", "imports sys"),
    ("import importlib", "imports importlib"),
    ("import subprocess", "imports subprocess"),
    ("import os\nos.kill(os.getppid(), 9)", "uses os.kill"),
    ("import os\nos.listdir('/proc')", "uses os.listdir"),
    ("from os import system", "uses os.system"),
    ("import os.path", "uses os.path"),
    ("import numpy as np\nnp.load('x.npy')", "uses numpy.load"),
    ("from numpy import fromfile", "uses numpy.fromfile"),
    ("import numpy as np\nnp.lib.format.open_memmap('x')", "uses numpy.lib"),
    ("import tensorflow as tf\ntf.io.read_file('x')", "uses tensorflow.io"),
    ("import tensorflow as tf\ntf.py_function(print, [], [])", "uses tensorflow.py_function"),
    ("import matplotlib.pyplot as plt\nplt.imread('x.png')", ".imread"),
    ("import otter\notter.execute", "uses otter.execute"),
    ("grader.export()", ".export"),
    # monkeypatching: the attacks replaced the grader and snnlib.simulate
    ("import snnlib\nsnnlib.simulate = lambda *a, **k: None", "monkeypatching"),
    ("import numpy as np\nnp.savez = print", "monkeypatching"),
    ("import numpy as np\ndel np.floor", "monkeypatching"),
    ("x = getattr(object, 'mro')", "getattr()"),
    ("globals()['f'] = print", "globals()"),
    ("vars()['f'] = 1", "vars()"),
    ("(1).__class__.__subclasses__()", "__class__"),
    ("def f(): pass\nf.__globals__", "__globals__"),
    ("get_ipython().run_cell('x = 1')", "get_ipython()"),
    ("from snnlib import *", "import *"),
    ("from . import x", "relative import"),
    ("import numpy as np\nm = np\nm.load('x')", "module numpy around"),
    ("import numpy as np\nxs = [np]", "module numpy around"),
    ("def g():\n    import subprocess\n    subprocess.run(['ls'])", "imports subprocess"),
    ("breakpoint()", "breakpoint()"),
    # dangerous modules re-exported by allowed ones, found by walking the real objects
    ("import snnlib\nsnnlib.ann.data.os.system('ls')", "uses snnlib.ann.data.os.system (of os"),
    ("from snnlib.ann import models\nmodels.json.loads('1')", "reaches the module json"),
    ("import matplotlib\nmatplotlib.re.enum.bltns.print", "reaches the module re"),
    ("import numpy as np\nnp.ma.core.builtins.print", "reaches the module builtins"),
    ("import numpy as np\nnp.ma.core.inspect.stack()", "reaches the module inspect"),
    ("import tensorflow as tf\ntf.keras.utils.get_file('x', 'y')", "uses tensorflow.keras.utils"),
    ("import random\nrandom._os.system('ls')", "private attribute ._os"),
])
def test_notebook_rules_refuse(code, complaint):
    wide, _ = findings([code])
    assert any(complaint in text for text in wide), wide


def test_notebook_rules_accept_what_the_notebooks_do():
    cells = [
        "import otter\ngrader = otter.Notebook('01_integrate_and_fire.ipynb')",
        "import os\n\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n\nimport numpy as np\n\nimport snnlib",
        "import tensorflow as tf\nimport matplotlib.pyplot as plt\nfrom snnlib.network import Stage",
        "def f(x):\n    v = np.zeros(x.shape)\n    return np.floor(v)",
        "class A:\n    def __init__(self):\n        self.x = 1",
        "grader.check('q1')",
        "for __name__x in []: pass",
        "plt.plot([1, 2]); plt.show()",
        "import functools, heapq, bisect, random, math, time, collections, itertools, copy\n"
        "functools.reduce(max, [1]); heapq.heappush([], 1); bisect.bisect_left([], 1)\n"
        "random.random(); math.floor(1.5); time.perf_counter(); collections.Counter()\n"
        "itertools.product([1]); copy.deepcopy([1]); np.random.default_rng(0).uniform()\n"
        "tf.keras.Model; tf.keras.layers.Dense; tf.float32; np.inf; np.newaxis; np.linalg.norm\n"
        "snnlib.simulate; snnlib.load_pretrained_convnet; os.environ.get('X')",
    ]
    assert findings(cells, ("f",))[0] == []


# --- one answer: the library's own implementation is not an answer --------------------------

SETUP = "import numpy as np\nimport snnlib\nfrom snnlib.network import Stage"


@pytest.mark.parametrize("cells", [
    # calls the library directly
    ["def f(x):\n    return snnlib.simulate(x)"],
    # through a helper function the notebook defines (the notebook's own comparison helper)
    ["def helper(x):\n    return snnlib.simulate(x)", "def f(x):\n    return helper(x)"],
    # through an alias, a default argument, a decorator, a class attribute
    ["sim = snnlib.simulate", "def f(x):\n    return sim(x)"],
    ["def f(x, s=snnlib.simulate):\n    return s(x)"],
    ["def deco(g):\n    return snnlib.sim.neurons.integrate_and_fire", "@deco\ndef f(x):\n    pass"],
    ["class K:\n    run = snnlib.simulate", "def f(x):\n    return K.run(x)"],
    # hidden in a container filled by another cell
    ["H = {}", "H['f'] = snnlib.simulate", "def f(x):\n    return H['f'](x)"],
    ["L = []", "L.append(snnlib.simulate)", "def f(x):\n    return L[0](x)"],
    ["H = [{}]", "for row in H:\n    row['f'] = snnlib.simulate", "def f(x):\n    return H[0]['f'](x)"],
    ["H = {}", "def fill(d):\n    d['f'] = snnlib.simulate", "fill(H)", "def f(x):\n    return H['f'](x)"],
    ["H = {}", "G = H", "G['f'] = snnlib.simulate", "def f(x):\n    return H['f'](x)"],
    # a global set from inside another function
    ["def setup():\n    global S\n    S = snnlib.simulate", "setup()", "def f(x):\n    return S(x)"],
    # imported inside the answer, or imported by name
    ["def f(x):\n    import snnlib.normalize\n    return snnlib.normalize.layer_scale(x)"],
    ["from snnlib.normalize.rules import layer_scale", "def f(x):\n    return layer_scale(x)"],
    ["def f(x):\n    return Stage"],
    # the library's result computed at the top level and returned
    ["R = snnlib.simulate(1)", "def f(x):\n    return R"],
])
def test_answer_using_the_library_is_refused(cells):
    wide, answer = findings([SETUP] + cells)
    assert wide == []
    assert any(text.startswith("uses snnlib") for text in answer), answer


def test_honest_answer_next_to_library_comparisons_is_accepted():
    # the notebook's own comparison cells use snnlib; the answer does not
    cells = [SETUP,
             "def f(current, n):\n    v = np.zeros(current.shape)\n    out = []\n"
             "    for t in range(n):\n        v += current\n        out.append(np.floor(v))\n"
             "    return np.array(out)",
             "def snnlib_spikes(c):\n    return snnlib.simulate(c)",
             "same = np.array_equal(f(np.ones(3), 2), snnlib_spikes(np.ones(3)))",
             "for name in ['a']:\n    print(f'{name} {f(np.ones(1), 1)}')",
             "table = {'a': snnlib.convert(1)}\nprint(table['a'])"]
    assert findings(cells, ("f",)) == ([], [])


def test_allowed_and_denied_names():
    cells = [SETUP, "def f():\n    return snnlib.simulate(1), snnlib.load_mnist()"]
    assert findings(cells, allowed=NUMPY + ("snnlib",))[1] == []
    _, answer = findings(cells, allowed=NUMPY + ("snnlib",), denied=("snnlib.simulate",))
    assert answer == ["uses snnlib.simulate"]
    _, answer = findings(cells, allowed=NUMPY + ("snnlib.load_mnist",))
    assert answer == ["uses snnlib.simulate"]
    _, answer = findings([SETUP, "def f():\n    return snnlib.sweep(1)"], allowed=a03.QUESTIONS[1].allowed,
                         denied=a03.QUESTIONS[1].denied)
    assert answer == ["uses snnlib.sweep"]


def test_missing_function_and_unparsable_cells():
    notebook = rules.Notebook([(0, "def f(:\n    pass"), (1, "def g(): pass")])
    assert rules.undefined(notebook, ("g",)) == ""
    assert rules.undefined(notebook, ("f", "g")) == (
        "f is not defined in the notebook (cells that do not parse: cell 0: SyntaxError: "
        "invalid syntax (line 1))")
    # a cell that does not parse is neither checked nor run
    notebook = rules.Notebook([(0, "exec(("), (1, "x = 1")])
    assert [i for i, _ in notebook.unparsed] == [0] and rules.notebook_findings(notebook) == []


# --- the data format between sandbox and grader --------------------------------------------

def test_wire_round_trip():
    value = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": [1, 2.5, None, True, "x"],
             "c": np.float32(1.5), "nan": float("nan")}
    back = wire.loads(wire.dumps(value))
    assert np.array_equal(back["a"], value["a"]) and back["a"].dtype == np.int64
    assert back["b"] == [1, 2.5, None, True, "x"] and back["c"] == 1.5
    assert math.isnan(back["nan"])


@pytest.mark.parametrize("value", [object(), np.array(["a"]), np.array([object()]),
                                   {1: 2}, lambda: 0, "x" * (wire.MAX_STRING + 1)])
def test_wire_refuses_other_objects(value):
    with pytest.raises(wire.WireError):
        wire.dumps(value)


@pytest.mark.parametrize("text", [
    "{", "1" * 5000, "[" * 100000 + "]" * 100000,
    '{"__array__": {"dtype": "|O", "shape": [1], "data": "AAAAAAAAAAA="}}',
    '{"__array__": {"dtype": "<f8", "shape": [1000000000], "data": ""}}',
    '{"__array__": {"dtype": "<f8", "shape": [2], "data": "AAAAAAAAAAA="}}',
    '{"__array__": {"dtype": "<f8", "shape": [-1], "data": ""}}',
    '{"__array__": 1, "x": 2}',
])
def test_wire_refuses_malformed_documents(text):
    with pytest.raises(wire.WireError):
        wire.loads(text)


# --- reading submissions -------------------------------------------------------------------

def test_unreadable_submissions(tmp_path):
    (tmp_path / "zero.ipynb").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.ipynb")
    (tmp_path / "dir.ipynb").mkdir()
    with open(tmp_path / "huge.ipynb", "wb") as f:
        f.truncate(submissions.MAX_BYTES + 1)
    (tmp_path / "text.ipynb").write_text("{ not json")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    (tmp_path / "deep.ipynb").write_text("[" * 100000 + "]" * 100000)
    expected = {"zero": "not a regular file", "fifo": "not a regular file",
                "dir": "not a regular file", "huge": "larger than", "text": "not JSON",
                "list": "no list of cells", "deep": "not JSON"}
    for name, complaint in expected.items():
        with pytest.raises(submissions.Unreadable, match=complaint):
            submissions.parse(submissions.read_bytes(tmp_path / f"{name}.ipynb"))


def test_malformed_cells_are_skipped_and_metadata_is_not_trusted():
    nb = {"metadata": {"otter": "01_integrate_and_fire", "snnlib_course": ["x"]},
          "cells": [{"cell_type": "code", "source": ["a = 1\n", "b = 2"]},
                    {"cell_type": "code", "source": 5}, "not a cell",
                    {"cell_type": "code", "source": ["x", 3]},
                    {"cell_type": "markdown", "source": "text"}]}
    assert submissions.code_cells(nb) == [(0, "a = 1\nb = 2")]
    known = ["01_integrate_and_fire", "02_percentile_normalization"]
    assert submissions.identify(nb, "alice.ipynb", known) is None
    assert submissions.identify(nb, "02_alice.ipynb", known) == "02_percentile_normalization"
    nb["metadata"] = {"otter": {"assignment_name": ["01_integrate_and_fire"]}}
    assert submissions.identify(nb, "01_bob.ipynb", known) == "01_integrate_and_fire"
    nb["metadata"] = {"otter": {"assignment_name": "02_percentile_normalization"}}
    assert submissions.identify(nb, "01_bob.ipynb", known) == "02_percentile_normalization"


def test_manual_answers_come_from_otters_question_regions():
    nb = {"cells": [{"cell_type": "markdown", "source": "intro"},
                    {"cell_type": "markdown", "source": "<!-- BEGIN QUESTION -->\n\n## Q3 prompt"},
                    {"cell_type": "markdown", "source": "My answer has five words."},
                    {"cell_type": "markdown", "source": "<!-- END QUESTION -->\n\n## Summary"}]}
    assert submissions.manual_answers(nb, ["q3"]) == {"q3": "My answer has five words."}
    nb["cells"][2]["source"] = submissions.PLACEHOLDER
    assert submissions.manual_answers(nb, ["q3"]) == {"q3": ""}


# --- numbers returned by answers: finite and in range --------------------------------------

@pytest.mark.parametrize("settings, complaint", [
    # the overflow: 1e30 Hz overflowed the spike count and passed the budget
    ({"scale_firing_rates": 1e30, "synapse": None}, "out of range"),
    ({"scale_firing_rates": 10**30, "synapse": None}, "out of range"),
    ({"scale_firing_rates": 10**400, "synapse": None}, "too large"),
    ({"scale_firing_rates": float("nan"), "synapse": None}, "finite"),
    ({"scale_firing_rates": float("inf"), "synapse": None}, "finite"),
    ({"scale_firing_rates": -300.0, "synapse": None}, "out of range"),
    ({"scale_firing_rates": 0.0, "synapse": None}, "out of range"),
    ({"scale_firing_rates": True, "synapse": None}, "expected a number"),
    ({"scale_firing_rates": "300", "synapse": None}, "expected a number"),
    ({"scale_firing_rates": {"conv0": 1e30}, "synapse": None}, "out of range"),
    ({"scale_firing_rates": {"dense": 300.0}, "synapse": None}, "spiking layers"),
    ({"scale_firing_rates": 300.0, "synapse": -0.002}, "out of range"),
    ({"scale_firing_rates": 300.0, "synapse": 1e9}, "out of range"),
    ({"scale_firing_rates": 300.0}, "keys"),
    ([300.0, 0.002], "expected a dict"),
])
def test_settings_must_be_finite_and_in_range(settings, complaint):
    with pytest.raises(Wrong, match=complaint):
        a03.settings_from(settings, ["conv0", "conv1"])


def test_valid_settings_pass():
    got = a03.settings_from({"scale_firing_rates": {"conv0": 300, "conv1": 250.0}, "synapse": 0.002},
                            ["conv0", "conv1"])
    assert got == {"scale_firing_rates": {"conv0": 300.0, "conv1": 250.0}, "synapse": 0.002}


# --- the command line: limits must be finite positive numbers ------------------------------

@pytest.mark.parametrize("option, value", [
    ("--cell-timeout", "inf"), ("--timeout", "nan"), ("--check-timeout", "0"),
    ("--timeout", "-5"), ("--memory-mb", "1.5"), ("--jobs", "0"), ("--output-mb", "x"),
])
def test_bad_limits_are_refused(option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["grade", "x.ipynb", option, value])
    assert exit_info.value.code == grade.USAGE_ERROR
    err = capsys.readouterr().err
    assert f"argument {option}" in err and ("must be" in err or "not a number" in err)


def test_gradebook_lists_manual_review_and_never_points_for_it():
    result = grade.Result("a.ipynb", "03_spike_budget", "graded", [
        grade.QuestionResult("q1", 1.0, 1.0, "ok"),
        grade.QuestionResult("q3", None, 1.0, "written answer", manual=True)],
        review=["q3_trade_off: written answer (30 words)"])
    rows = grade.gradebook_csv([result]).splitlines()
    assert rows[0] == "file,assignment,status,points,max_points,q1,q3,manual_review,notes"
    assert rows[1] == "a.ipynb,03_spike_budget,graded,1,1,1,,q3_trade_off: written answer (30 words),"
    assert json.loads(json.dumps(result.as_dict()))["max_points"] == 1
