"""The README's "Extending snnlib" examples run as they are (so they cannot rot)."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def extending_examples():
    """The python code blocks of the README's "Extending snnlib" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Extending snnlib\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_extending_examples_run(tmp_path):
    blocks = extending_examples()
    # a neuron model, a layer type and a normalization rule
    assert len(blocks) == 3
    assert "register_neuron_model" in blocks[0] and "@register(" in blocks[1]
    assert "register_normalization" in blocks[2]
    for i, block in enumerate(blocks):
        script = tmp_path / f"example{i}.py"
        script.write_text(block)
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
                   MPLBACKEND="Agg")
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        # each example runs in a fresh interpreter, and its assertions hold
        assert done.returncode == 0, (i, done.stdout[-2000:], done.stderr[-3000:])


def test_library_in_one_screen_runs(tmp_path):
    """The README's first example (convert, verify, normalize, simulate, NengoDL's dict) runs."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## The library in one screen\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    # the first block, then the NengoDL recipe that continues it (its converter is checked)
    assert "SpikingIntegrateAndFire" in blocks[1]
    check = ("\nassert {type(e.neuron_type).__name__ for e in converter.net.all_ensembles} == "
             "{'SpikingIntegrateAndFire'}\nprint('recipe converter built')\n")
    script = tmp_path / "one_screen.py"
    script.write_text(blocks[0] + "\n" + blocks[1] + check)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    # it printed the accuracy with its interval
    assert re.search(r"\d+\.\d % \(95 % CI", done.stdout), done.stdout[-1000:]
    assert "recipe converter built" in done.stdout
