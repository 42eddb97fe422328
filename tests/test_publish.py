"""Publishing: the GitHub Pages workflow, the Binder environment and the repository settings.

Nothing here runs a build or reaches a network: the files are parsed and compared with the
README's book command, with ``dev.py``'s install recipe and with ``requirements.lock``.
"""
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
BINDER = ROOT / "binder"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")
# every file repo2docker reads from a binder/ folder (its "configuration files")
REPO2DOCKER_FILES = {
    "environment.yml", "environment.yaml", "requirements.txt", "requirements3.txt", "Pipfile",
    "Pipfile.lock", "setup.py", "pyproject.toml", "Project.toml", "REQUIRE", "install.R",
    "apt.txt", "DESCRIPTION", "manifest.xml", "postBuild", "start", "runtime.txt", "default.nix",
    "Dockerfile",
}


@pytest.fixture(scope="module")
def dev():
    """dev.py as a module (it only defines functions and constants at import)."""
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def commands(script):
    """The commands of a shell script or `run:` block: comments, blank lines and `set` dropped."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "set ", "export ")):
            found.append(line)
    return found


def readme_book_command():
    """The README's book command: the line of its first bash block that builds the book."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.DOTALL).group(1)
    lines = [line for line in commands(block) if shlex.split(line)[-1:] == ["book"]]
    assert len(lines) == 1, f"expected one book command in the README's first bash block: {block}"
    return shlex.split(lines[0])


def lock_pins():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"requirements.lock: not an exact pin: {line!r}"
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


# ---------------------------------------------------------------------------------------------
# The GitHub Pages workflow


def test_workflow_runs_the_readme_book_command(workflow):
    book = readme_book_command()
    assert book == ["python3", "dev.py", "book"]
    runs = [shlex.split(line) for step in steps(workflow) for line in commands(step.get("run", ""))]
    # the workflow builds the book with exactly the README's command, once
    assert runs.count(book) == 1, runs
    # and nothing else that builds the book (jupyter-book directly, another dev.py command)
    assert not [r for r in runs if "jupyter-book" in r or ("dev.py" in r and r != book)], runs


def test_workflow_sets_up_python_311(workflow, dev):
    setup = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/setup-python@")]
    assert len(setup) == 1
    # the Python dev.py requires (TensorFlow 2.12 has no wheels for newer ones)
    assert str(setup[0]["with"]["python-version"]) == "{}.{}".format(*dev.PYTHON)


def test_workflow_publishes_build_html(workflow, dev):
    uses = [s.get("uses", "").split("@")[0] for s in steps(workflow)]
    for action in ("actions/checkout", "actions/configure-pages", "actions/upload-pages-artifact",
                   "actions/deploy-pages"):
        assert action in uses, f"the workflow does not use {action}"
    upload = next(s for s in steps(workflow) if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    # the folder uploaded is the one `python3 dev.py book` writes
    assert Path(upload["with"]["path"]) == Path("_build/html") == dev.BOOK_HTML.relative_to(dev.ROOT)
    # the upload comes after the build, in the same job
    build_job = next(job for job in workflow["jobs"].values() if upload in job.get("steps", []))
    runs = [step.get("run", "") for step in build_job["steps"]]
    assert any("dev.py book" in run for run in runs[: build_job["steps"].index(upload)])


def test_workflow_deploys_with_pages_permissions(workflow):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == [yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]]
    permissions = workflow["permissions"]
    assert permissions == {"contents": "read", "pages": "write", "id-token": "write"}
    # one deployment at a time, and a running deployment is never cancelled
    assert workflow["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    deploy = next(job for job in workflow["jobs"].values()
                  if any(s.get("uses", "").startswith("actions/deploy-pages@") for s in job.get("steps", [])))
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["needs"] in ("build", ["build"])


# ---------------------------------------------------------------------------------------------
# Binder


def test_binder_uses_python_311_and_only_postbuild(dev):
    files = {path.name for path in BINDER.iterdir()}
    # runtime.txt and postBuild only: no requirements.txt or environment.yml, so repo2docker
    # installs nothing beside the lock (with a binder/ folder it also ignores pyproject.toml)
    assert files & REPO2DOCKER_FILES == {"runtime.txt", "postBuild"}, files
    assert (BINDER / "runtime.txt").read_text().strip() == "python-{}.{}".format(*dev.PYTHON)
    assert (BINDER / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    # a root-level configuration would be ignored (binder/ wins) and confuse readers
    assert not [name for name in REPO2DOCKER_FILES - {"pyproject.toml"} if (ROOT / name).exists()]


def test_binder_installs_the_lock_once_the_dev_py_way(dev):
    postbuild = commands((BINDER / "postBuild").read_text())
    # postBuild installs with dev.py's own recipe, once, and installs nothing itself
    assert postbuild[0] == "python3 dev.py setup", postbuild
    assert not [line for line in postbuild if re.search(r"\bpip\b|\bconda\b|\bmamba\b", line)], postbuild
    # then registers that environment as the notebooks' kernel ("python3" in every chapter)
    kernel = shlex.split(postbuild[1])
    assert kernel[:5] == [".venv/bin/python", "-m", "ipykernel", "install", "--prefix"]
    assert kernel[kernel.index("--name") + 1] == "python3"
    assert len(postbuild) == 2


def test_dev_py_installs_exactly_the_lock_then_nengo_dl(dev):
    steps_ = [[str(arg) for arg in step] for step in dev.install_steps(Path("py"))]
    pip = ["py", "-m", "pip", "--disable-pip-version-check", "install"]
    assert all(step[:5] == pip for step in steps_)
    # 1. the lock, every package pinned, without dependency resolution
    assert steps_[0][5:] == ["--no-deps", "-r", str(ROOT / "requirements.lock")]
    # 2. nengo-dl after it, without dependencies and without build isolation (one TensorFlow)
    assert steps_[1][5:] == ["--no-deps", "--no-build-isolation", dev.NENGO_DL]
    assert re.fullmatch(r"nengo-dl==\d+\.\d+\.\d+", dev.NENGO_DL)
    # 3. the reference packages of chapter 12 (NengoLoihi, KerasSpiking), pinned, no dependencies
    assert steps_[2][5:] == ["--no-deps", *dev.REFERENCE_PACKAGES]
    assert all(re.fullmatch(r"[a-z-]+==\d+\.\d+\.\d+", pin) for pin in dev.REFERENCE_PACKAGES)
    # 4. this project, editable, also without dependencies; nothing else
    assert steps_[3][5:] == ["--no-deps", "--no-build-isolation", "-e", str(ROOT)]
    assert len(steps_) == 4


def test_lock_pins_everything_binder_installs():
    pins = lock_pins()
    # every line of the lock is an exact pin (checked in lock_pins), with the stack's versions
    assert pins["tensorflow-cpu"].startswith("2.12.") and pins["keras"] == "2.12.0"
    assert pins["numpy"] == "1.24.3" and pins["jupyter-book"].startswith("1.")
    # ipykernel is in the lock: the Binder kernel runs from the locked environment
    assert "ipykernel" in pins
    # the second TensorFlow and nengo-dl itself are not in the lock (nengo-dl comes after it)
    assert "tensorflow" not in pins and "nengo-dl" not in pins


# ---------------------------------------------------------------------------------------------
# The repository address and the launch buttons


def test_repository_address_is_set_in_one_place():
    text = (ROOT / "_config.yml").read_text()
    config = yaml.safe_load(text)
    url = config["repository"]["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    # written once (a YAML anchor feeds the intro's substitution), so a fork changes one line
    assert text.count(url) == 1
    assert config["parse"]["myst_substitutions"]["repository_url"] == url
    assert "{{ repository_url }}" in (ROOT / "intro.md").read_text()
    assert config["html"]["use_repository_button"] is True
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["repository"]["path_to_book"] == ""


def test_dev_py_and_tidy_tool_use_only_the_standard_library():
    import ast
    import sys

    # both run with any Python 3 before .venv exists (python3 dev.py ..., in CI and on Binder)
    for path in (ROOT / "dev.py", ROOT / "tools" / "tidy_notebooks.py"):
        tree = ast.parse(path.read_text())
        modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                   for alias in node.names}
        modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        assert modules <= sys.stdlib_module_names, f"{path.name}: {modules - sys.stdlib_module_names}"


def test_the_whole_suite_refuses_to_start_without_chromium(tmp_path, dev):
    """The README's test command runs the browser tests, or stops at once with the command that
    installs the browser (the one .ci/run runs); it does not skip them silently."""
    import subprocess
    import sys

    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no chromium on this PATH
    result = subprocess.run([sys.executable, str(ROOT / "dev.py"), "test"], env=env,
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode != 0
    assert dev.CHROMIUM_INSTALL in result.stderr
    assert dev.CHROMIUM_INSTALL == "sudo apt-get install -y chromium"
    assert "apt-get install -y -qq chromium" in (ROOT / ".ci" / "run").read_text()
    assert dev.CHROMIUM_INSTALL in (ROOT / "README.md").read_text()
