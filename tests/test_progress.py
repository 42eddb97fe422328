"""Progress bars: SNNLIB_PROGRESS, tqdm's own TQDM_DISABLE, and progress=True/False."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snnlib import progress

MODULE = Path(progress.__file__)


@pytest.mark.parametrize("value, on", [("0", False), ("off", False), ("False", False),
                                       ("1", True), ("yes", True)])
def test_snnlib_progress_is_read_at_each_call(monkeypatch, value, on):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("SNNLIB_PROGRESS", value)
    items = range(3)
    bar = progress.progress_bar(items)
    assert (bar is not items) == on
    assert list(bar) == [0, 1, 2]
    assert progress.progress_bar(items, progress=False) is items
    forced = progress.progress_bar(items, progress=True)
    assert forced is not items and not forced.disable


def test_tqdm_disable_is_honoured_unless_a_bar_is_forced():
    # tqdm reads TQDM_* when it is imported: a fresh interpreter, progress.py alone
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('progress', {str(MODULE)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(module.progress_bar(range(3)).disable, "
        "module.progress_bar(range(3), progress=True).disable)\n")
    env = {**os.environ, "TQDM_DISABLE": "1", "SNNLIB_PROGRESS": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["True", "False"]
