"""Run one submission in a sandbox and collect what it returned (the trusted side).

Each run gets its own temporary folder (a copy of nothing but the request: the cells to run and
the cases), a wall-clock limit after which its whole process group is killed, the limits and
isolation of :mod:`course.launcher`, and, as root, a user id of its own, so it cannot write the
submissions, the library, the gradebook or another run's folder, nor signal the grader. Every
process left with that user id is killed at the end (a detached background process too).

Nothing written by the sandbox is trusted: files are opened without following links, must be
regular, owned by the run's user, and small; their content is parsed as data
(:mod:`course.wire`) and judged by the caller.
"""
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from course import wire

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = Path(__file__).with_name("launcher.py")
UID_BASE, UID_RANGE = 2_000_000_000, 100_000_000  # unused by real accounts
MAX_ANSWER_BYTES = 32 * 2**20
LOG_TAIL = 4000
PASS_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS",
            "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Limits:
    """Limits of one run (seconds, MiB); see ``python3 dev.py assignments grade --help``."""

    timeout: float = 300.0       # wall clock, the whole run
    cell_timeout: float = 120.0  # one cell
    check_timeout: float = 120.0  # one question's calls
    memory_mb: int = 6144        # address space (TensorFlow reserves ~2 GiB)
    output_mb: int = 16          # largest file the run may write, its printed output included


@dataclass
class Isolation:
    """How runs are isolated on this machine (probed once per grading run)."""

    drop_user: bool
    namespaces: bool
    notes: list = field(default_factory=list)

    def describe(self):
        parts = ["own user id" if self.drop_user else "same user as the grader",
                 "namespaces (mount, network, PID)" if self.namespaces else "no namespaces"]
        return ", ".join(parts) + ("; " + "; ".join(self.notes) if self.notes else "")


@dataclass
class Outcome:
    """What came back from one run."""

    answers: dict              # question -> list of {"value": ...} / {"error": ...}, or missing
    cell_errors: list
    finished: bool             # the runner wrote all its answers
    stopped: str               # why it did not finish ("" when it did)
    log_tail: str
    seconds: float
    notes: list


def python_path():
    """Where the sandbox imports ``snnlib`` and ``course`` from: the grader's own copies."""
    import snnlib

    roots = {str(ROOT), str(Path(snnlib.__file__).resolve().parents[1])}
    return os.pathsep.join(sorted(roots))


def _env(home):
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(PATH="/usr/bin:/bin", HOME=home, TMPDIR=home, USER="sandbox",
               MPLCONFIGDIR=os.path.join(home, ".matplotlib"), MPLBACKEND="Agg",
               KERAS_HOME=os.path.join(home, ".keras"), PYTHONPATH=python_path(),
               PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", MALLOC_ARENA_MAX="2")
    return env


def needed_paths(run_dir):
    """What a run must reach: the interpreter and its environment, the grader's code, the run."""
    import snnlib

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent,
             ROOT, Path(snnlib.__file__).resolve().parents[1], Path(run_dir)}
    return sorted({p.resolve() for p in paths})


def closed_ancestors(paths):
    """``[(ancestor, [relative paths])]`` for the paths behind a directory other users cannot
    enter (e.g. a virtual environment under a 0700 ``/root``)."""
    found = {}
    for path in paths:
        for ancestor in list(reversed(path.parents))[1:] + [path]:
            try:
                mode = os.stat(ancestor).st_mode
            except OSError:
                break
            if not mode & stat.S_IXOTH:
                if ancestor != path:
                    found.setdefault(str(ancestor), set()).add(str(path.relative_to(ancestor)))
                break
    return [(a, sorted(r)) for a, r in sorted(found.items())]


def _unique_uid():
    while True:
        uid = UID_BASE + secrets.randbelow(UID_RANGE)
        if not _processes_of(uid):
            return uid


def _processes_of(uid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _kill_user(uid):
    """Kill every process of the run's user (several rounds: one may be forking)."""
    for _ in range(20):
        pids = _processes_of(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def launch(run_dir, request, *, limits, isolation, hide, argv_tail):
    """Start the runner for ``request``; returns (process, paths) to pass to :func:`finish`."""
    box = Path(tempfile.mkdtemp(prefix="run-", dir=run_dir))
    uid = _unique_uid() if isolation.drop_user else None
    home, out = box / "home", box / "out"
    for path in (home, out):
        path.mkdir()
    (box / "request.json").write_text(request, encoding="utf-8")
    if uid is not None:
        for path in (box, home, out, box / "request.json"):
            os.chown(path, uid, uid)
    os.chmod(box, 0o700)
    private = Path(tempfile.mkdtemp(prefix="private-", dir=run_dir))  # root only
    config = dict(
        memory_mb=limits.memory_mb, output_mb=limits.output_mb,
        cpu_seconds=int(limits.timeout) + 5, uid=uid, namespaces=isolation.namespaces,
        hide=[str(p) for p in hide], cwd=str(home), notes=str(private / "notes.json"),
        expose=closed_ancestors(needed_paths(run_dir)) if uid is not None else [],
        stash=str(private / "stash"),
        env=_env(str(home)),
        argv=[sys.executable, "-P", "-s", "-m", "course.runner"] + argv_tail(box))
    (private / "config.json").write_text(json.dumps(config), encoding="utf-8")
    log = open(private / "log.txt", "wb")
    process = subprocess.Popen([sys.executable, "-I", "-S", str(LAUNCHER),
                                str(private / "config.json")],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True)
    log.close()
    return process, dict(box=box, private=private, uid=uid, start=time.monotonic())


def finish(process, run, *, limits, questions):
    """Wait for the run (at most ``limits.timeout``), kill what is left, read its answers."""
    stopped = ""
    try:
        process.wait(timeout=limits.timeout)
    except subprocess.TimeoutExpired:
        stopped = f"stopped after {limits.timeout:g} s (wall-clock limit)"
    _kill_group(process.pid)
    process.wait()
    if run["uid"] is not None:
        _kill_user(run["uid"])
    seconds = round(time.monotonic() - run["start"], 1)
    out = run["box"] / "out"
    status = _read(out, "status.json", run["uid"]) or {}
    answers = {}
    for name in questions:
        value = _read(out, f"{name}.json", run["uid"])
        if isinstance(value, list):
            answers[name] = value
    finished = _read(out, "done.json", run["uid"]) is not None
    if not finished and not stopped:
        code = process.returncode
        if code is not None and code > 128:
            name = signal.Signals(code - 128).name if code - 128 in signal.valid_signals() \
                else str(code - 128)
            stopped = f"killed by {name}" + (" (CPU-time limit)" if name in ("SIGXCPU", "SIGKILL")
                                              else "")
        else:
            stopped = f"the run ended early (exit status {code})"
    notes = _read_private(run["private"] / "notes.json") or {}
    tail = _tail(run["private"] / "log.txt")
    cell_errors = status.get("cell_errors") if isinstance(status, dict) else None
    cell_errors = [str(e)[:400] for e in cell_errors[:50]] if isinstance(cell_errors, list) else []
    shutil.rmtree(run["box"], ignore_errors=True)
    shutil.rmtree(run["private"], ignore_errors=True)
    return Outcome(answers, cell_errors, finished, stopped, tail, seconds,
                   notes.get("problems", []) if isinstance(notes, dict) else [])


def _read(directory, name, uid):
    """A JSON document the sandbox wrote, or None: no links, regular, its owner, small."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        os.close(dir_fd)
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ANSWER_BYTES
                or (uid is not None and info.st_uid != uid)):
            return None
        data = os.read(fd, MAX_ANSWER_BYTES + 1)
        if len(data) > MAX_ANSWER_BYTES:
            return None
        return wire.loads(data.decode("utf-8", errors="replace"))
    except (OSError, wire.WireError):
        return None
    finally:
        os.close(fd)
        os.close(dir_fd)


def _read_private(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _tail(path):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_TAIL))
            return f.read(LOG_TAIL).decode("utf-8", errors="replace")
    except OSError:
        return ""


def probe(run_dir, isolation, hide):
    """Can a sandboxed process import numpy and snnlib here? Returns (ok, message)."""
    process, run = launch(run_dir, "{}", limits=Limits(timeout=60), isolation=isolation,
                          hide=hide, argv_tail=lambda box: ["--probe"])
    outcome_stopped = ""
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        outcome_stopped = "timed out"
    _kill_group(process.pid)
    process.wait()
    if run["uid"] is not None:
        _kill_user(run["uid"])
    log = _tail(run["private"] / "log.txt")
    notes = _read_private(run["private"] / "notes.json") or {}
    shutil.rmtree(run["box"], ignore_errors=True)
    shutil.rmtree(run["private"], ignore_errors=True)
    ok = process.returncode == 0 and not outcome_stopped and '"snnlib"' in log
    return ok, (log.strip().splitlines() or [outcome_stopped or "no output"])[-1][:300], notes


def choose_isolation(run_dir, hide):
    """The strongest isolation that works on this machine (probed, most isolated first)."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    candidates = ([Isolation(True, True), Isolation(True, False), Isolation(False, True)]
                  if root else [])
    candidates.append(Isolation(False, False))
    problems = []
    for candidate in candidates:
        ok, message, notes = probe(run_dir, candidate, hide)
        if ok:
            candidate.notes = problems + [str(n) for n in notes.get("problems", [])][:5]
            if not root:
                candidate.notes.append("not root: no separate user, no namespaces")
            return candidate
        problems.append(f"{candidate.describe()} failed: {message}")
    raise RuntimeError("no sandbox can run Python here: " + "; ".join(problems))
