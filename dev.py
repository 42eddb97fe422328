#!/usr/bin/env python3
"""Set up the environment, build the book, run the tests: one entry point, standard library only.

Usage (from the repository root, with Python 3.11 and pip):

    python3 dev.py book     # set up .venv if needed, build the HTML book, print where it is
    python3 dev.py test     # set up .venv if needed, run the whole test suite (extra args go to pytest)
    python3 dev.py test-variant  # the chapters again, with other floating-point summation orders
    python3 dev.py setup    # only set up .venv
    python3 dev.py lock     # re-resolve requirements.in into requirements.lock (needs the network)
    python3 dev.py tidy-notebooks [--check]   # fold the chapters' check cells in the HTML (hide-input tag)
    python3 dev.py assignments build|check|grade PATH...|pdf   # course assignments (assignments/README.md)

The environment is rebuilt only when ``requirements.lock``, ``pyproject.toml`` or this file's
install recipe changed, so re-running a command is fast. Why the recipe has several steps:
nengo-dl 3.6.0 is a source distribution whose build writes ``tensorflow`` into its requirements,
which beside ``tensorflow-cpu`` gives two TensorFlows in one folder. So everything else is
installed from the fully pinned lock with ``--no-deps``, and nengo-dl last, without its
dependencies. A ``pip.conf`` inside ``.venv`` then makes every later ``pip install`` honour the
lock and refuse a second TensorFlow.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
GUARD = ROOT / "constraints-guard.txt"
STAMP = VENV / ".snnlib-env-stamp"
NENGO_DL = "nengo-dl==3.6.0"
# The neuromorphic references of chapter 12, installed like nengo-dl without their dependencies:
# nengo-loihi 1.1.0 (its neurons and emulator; it declares only packages the lock already pins),
# nengo-extras 0.5.0 (NengoDL's builders for Loihi's neurons, moved there from nengo-loihi) and
# keras-spiking 0.3.0 (ModelEnergy's device table), which declares `tensorflow` and would
# otherwise pull in a second TensorFlow 2.21 with Keras 3 and NumPy 2.
REFERENCE_PACKAGES = ("nengo-loihi==1.1.0", "nengo-extras==0.5.0", "keras-spiking==0.3.0")
RECIPE_VERSION = "1"  # bump when the install steps below change
PYTHON = (3, 11)
# jupyter-book 1.x has no `python -m jupyter_book`; this runs its command line on any OS.
JUPYTER_BOOK = "from jupyter_book.cli.main import main; main()"
# Where `jupyter-book build ROOT` writes the HTML (the GitHub Pages workflow publishes this folder).
BOOK_HTML = ROOT / "_build" / "html"


def log(message):
    print(f"[dev.py] {message}", flush=True)


def venv_python():
    scripts = "Scripts" if os.name == "nt" else "bin"
    exe = "python.exe" if os.name == "nt" else "python"
    return VENV / scripts / exe


def run(*args, env=None):
    """Run a command, echoing it; exit with its status if it fails."""
    log("$ " + " ".join(str(a) for a in args))
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def fingerprint():
    digest = hashlib.sha256(RECIPE_VERSION.encode())
    for path in (LOCK, GUARD, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(NENGO_DL.encode())
    digest.update(" ".join(REFERENCE_PACKAGES).encode())
    return digest.hexdigest()


def find_base_python():
    """The Python 3.11 interpreter to build .venv with."""
    if sys.version_info[:2] == PYTHON:
        return sys.executable
    candidate = shutil.which("python3.11")
    if candidate:
        return candidate
    sys.exit(
        f"dev.py: Python 3.11 is required (TensorFlow 2.12 has no wheels for newer Pythons); "
        f"this is Python {sys.version.split()[0]} and no 'python3.11' is on PATH. "
        "Install Python 3.11 and run: python3.11 dev.py ..."
    )


def setup():
    """Create .venv from the lock file unless it is already up to date."""
    wanted = fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and venv_python().exists():
        log(f"environment up to date ({VENV.relative_to(ROOT)})")
        return
    log("setting up the environment in .venv (about 2.5 GB; a few minutes on a fresh machine)")
    if VENV.exists():
        shutil.rmtree(VENV)
    base = find_base_python()
    if base == sys.executable:
        venv.EnvBuilder(with_pip=True).create(VENV)
    else:
        run(base, "-m", "venv", VENV)
    py = venv_python()
    for step in install_steps(py):
        run(*step)
    write_pip_conf()
    check_one_tensorflow(py)
    STAMP.write_text(wanted + "\n")
    log("environment ready")


def install_steps(py):
    """The pip commands that fill a fresh environment, in order (Binder's postBuild runs them too).

    The lock first, without dependencies (it pins every package); then nengo-dl, without
    dependencies and without build isolation, so that it builds with the pinned setuptools and
    cannot pull in a second TensorFlow; then the reference packages (NengoLoihi, KerasSpiking),
    also without dependencies; then this project, editable.
    """
    pip = (py, "-m", "pip", "--disable-pip-version-check")
    return [
        (*pip, "install", "--no-deps", "-r", LOCK),
        (*pip, "install", "--no-deps", "--no-build-isolation", NENGO_DL),
        (*pip, "install", "--no-deps", *REFERENCE_PACKAGES),
        (*pip, "install", "--no-deps", "--no-build-isolation", "-e", ROOT),
    ]


def write_pip_conf():
    """Make every later `pip install` in .venv respect the lock and the TensorFlow guard."""
    conf = VENV / ("pip.ini" if os.name == "nt" else "pip.conf")
    conf.write_text(
        "# Written by dev.py: keeps a student's `pip install` from replacing pinned packages\n"
        "# or adding a second TensorFlow. See README.md, 'Adding packages'.\n"
        "[install]\n"
        f"constraint =\n    {LOCK}\n    {GUARD}\n"
    )


def check_one_tensorflow(py):
    code = (
        "import importlib.metadata as m\n"
        "names = sorted({d.metadata['Name'].lower() for d in m.distributions()})\n"
        "tf = [n for n in names if n in ('tensorflow', 'tensorflow-cpu', 'tensorflow-gpu',"
        " 'tensorflow-intel', 'tf-nightly')]\n"
        "assert tf == ['tensorflow-cpu'], f'expected only tensorflow-cpu, found {tf}'\n"
        "print('[dev.py] one TensorFlow distribution:', tf[0])\n"
    )
    run(py, "-c", code)


def test_env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["SNNLIB_STRICT_CLAIMS"] = "1"  # the chapters' claims must hold (snnlib/claims.py)
    env["SNNLIB_PROGRESS"] = "0"  # no progress bars in notebook outputs (snnlib/progress.py)
    return env


def book():
    setup()
    run(venv_python(), "-c", JUPYTER_BOOK, "build", ROOT, env=test_env())
    index = BOOK_HTML / "index.html"
    if not index.exists():
        sys.exit(f"dev.py: the build finished but {index} is missing")
    log(f"book built: {index}")


#: What installs the browser the book's browser tests drive (Debian/Ubuntu; .ci/run runs it).
CHROMIUM_INSTALL = "sudo apt-get install -y chromium"


def find_chromium():
    """Debian's chromium (or SNNLIB_CHROMIUM), as tests/test_book.py looks for it."""
    for candidate in (os.environ.get("SNNLIB_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    return None


def test(pytest_args):
    """The whole suite (or the given tests); the whole suite includes the browser tests, so
    it refuses to start without Chromium rather than skip them."""
    if not pytest_args and find_chromium() is None:
        sys.exit("dev.py: the whole test suite includes the book's browser tests, which need "
                 f"Chromium. Install it with:\n    {CHROMIUM_INSTALL}\n(or set SNNLIB_CHROMIUM "
                 "to a Chrome/Chromium executable), then run python3 dev.py test again.")
    setup()
    env = test_env()
    env["SNNLIB_REQUIRE_BROWSER"] = "1"  # tests/test_book.py fails instead of skipping
    run(venv_python(), "-m", "pytest", *pytest_args, env=env)


#: Settings that change the order in which TensorFlow and BLAS add numbers on this machine: a
#: stand-in for another CPU type (another vector width gives other rounding). The chapters'
#: stored outputs must hold under both. On a CPU with AVX-512 the variant runs the AVX2 code
#: paths (oneDNN and OpenBLAS), as most laptops and CI machines do; elsewhere it turns oneDNN off
#: and runs on one thread. OPENBLAS_CORETYPE is only ever lowered to an ISA the CPU has.
VARIANT = {"TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
           "TF_NUM_INTEROP_THREADS": "1"}
VARIANT_AVX512 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"}


def cpu_has_avx512():
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def test_variant(pytest_args):
    """Run the chapters (or the given tests) with other summation orders (:data:`VARIANT`)."""
    setup()
    env = test_env()
    variant = VARIANT_AVX512 if cpu_has_avx512() else VARIANT
    env.update(variant)
    log("other summation orders: " + " ".join(f"{k}={v}" for k, v in variant.items()))
    run(venv_python(), "-m", "pytest", *(pytest_args or ["chapters"]), env=env)


def assignments(args):
    """Build, check or grade the course assignments with otter-grader (assignments/README.md).

    The exit status is the command's own: for ``grade``, the number of notebooks that could
    not be graded.
    """
    setup()
    command = [str(venv_python()), "-m", "course", *args]
    log("$ " + " ".join(command))
    sys.exit(subprocess.run(command, cwd=ROOT, env=test_env()).returncode)


def lock():
    """Re-resolve requirements.in in a scratch venv and write requirements.lock.

    Kept, not pip-compile or ``uv pip compile`` (issue 24): neither is installed here (not in
    .venv, not on PATH), and dev.py uses the standard library only, by design: it runs before
    any package is installed. pip itself resolves; this only writes down ``pip freeze``.
    """
    scratch = ROOT / "_build" / "lock-venv"
    if scratch.exists():
        shutil.rmtree(scratch)
    run(find_base_python(), "-m", "venv", scratch)
    py = scratch / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    run(py, "-m", "pip", "install", "-r", ROOT / "requirements.in")
    frozen = subprocess.run(
        [str(py), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    skip = ("pip==", "nengo-dl", "nengo_dl", "snnlib", "-e ", "# editable")
    keep = sorted((line for line in frozen if not line.lower().startswith(skip)), key=str.lower)
    header = [
        "# Fully pinned environment for Python 3.11 (x86-64 Linux; generated by `python3 dev.py lock`).",
        "# Installed with `pip install --no-deps -r requirements.lock`; nengo-dl comes after it (see dev.py).",
    ]
    LOCK.write_text("\n".join(header + keep) + "\n")
    shutil.rmtree(scratch)
    log(f"wrote {LOCK.name} ({len(keep)} packages)")


def tidy_notebooks(args):
    """Tag the chapters' check cells `hide-input` (tools/tidy_notebooks.py; standard library only)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tidy_notebooks", ROOT / "tools" / "tidy_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.exit(module.main(args))


def main(argv):
    commands = {"setup": setup, "book": book, "lock": lock}
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    if argv[0] == "test":
        test(argv[1:])
    elif argv[0] == "test-variant":
        test_variant(argv[1:])
    elif argv[0] == "assignments":
        assignments(argv[1:])
    elif argv[0] == "tidy-notebooks":
        tidy_notebooks(argv[1:])
    elif argv[0] in commands and len(argv) == 1:
        commands[argv[0]]()
    else:
        sys.exit(
            f"dev.py: unknown command {' '.join(argv)!r}; "
            "use one of: setup, book, test, test-variant, lock, assignments, tidy-notebooks"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
