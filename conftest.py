"""Test-session rules for the whole repository (unit tests and chapters alike).

1. Claims are strict: the chapters' check cells (:func:`snnlib.claims.claim`) raise instead of
   printing a note. The variable is set here, before any kernel starts, so that the notebook
   kernels nbval launches inherit it.
   Files the chapters make at run time go to a temporary ``SNNLIB_CACHE`` folder.
2. Running the tests never rewrites the repository: the content of every tracked file, and the
   list of untracked files that git does not ignore, are recorded when the session starts and
   compared when it ends. Any difference fails the session and names the files.
"""
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

os.environ["SNNLIB_STRICT_CLAIMS"] = "1"
# no progress bars in stored or compared notebook outputs (snnlib/progress.py)
os.environ["SNNLIB_PROGRESS"] = "0"
# what the chapters make at run time (retrained weights) goes to a fresh folder, not ~/.cache
os.environ.setdefault("SNNLIB_CACHE", tempfile.mkdtemp(prefix="snnlib-cache-"))

ROOT = Path(__file__).resolve().parent


def _git(*args):
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def repository_snapshot():
    """{path: sha1 of the content} for tracked files, plus untracked non-ignored paths.

    None outside a git work tree (e.g. an unpacked source distribution).
    """
    tracked = _git("ls-files", "-z")
    untracked = _git("ls-files", "--others", "--exclude-standard", "-z")
    if tracked is None or untracked is None:
        return None
    snapshot = {}
    for name in filter(None, tracked.split("\0")):
        path = ROOT / name
        snapshot[name] = (hashlib.sha1(path.read_bytes()).hexdigest()
                          if path.is_file() else "missing")
    for name in filter(None, untracked.split("\0")):
        snapshot[name] = "untracked"
    return snapshot


def changed_paths(before, after):
    """Paths whose state differs between two snapshots, sorted."""
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


def pytest_sessionstart(session):
    session.config._snnlib_snapshot = repository_snapshot()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_snnlib_snapshot", None)
    if before is None:
        return
    changed = changed_paths(before, repository_snapshot() or {})
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = ("running the tests changed files in the repository (tests, chapters and "
                   "benchmarks must write to temporary or cache folders only): " + ", ".join(changed))
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", "repository changed", red=True)
            reporter.write_line(message)
        else:
            print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
