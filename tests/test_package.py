"""Packaging and lint: the wheel holds every subpackage and the weights and declares every
direct dependency; ruff is clean."""
import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def subpackages():
    """Every folder of snnlib/ with an __init__.py, as a dotted name."""
    return sorted(".".join(path.parent.relative_to(ROOT).parts)
                  for path in (ROOT / "snnlib").rglob("__init__.py")
                  if "__pycache__" not in path.parts)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built offline from a copy of the sources (the checkout stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "snnlib", source / "snnlib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = out.glob("snnlib-*.whl")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        return names, archive.read(metadata).decode()


def test_wheel_has_every_subpackage_and_the_weights(wheel):
    wheel, _ = wheel
    packages = subpackages()
    # the walk found the library
    assert "snnlib" in packages
    for package in packages:
        # each subpackage is in the wheel (package discovery, not a hand-written list)
        assert package.replace(".", "/") + "/__init__.py" in wheel, package
    for path in (ROOT / "snnlib").rglob("*.py"):
        if "__pycache__" not in path.parts:
            assert path.relative_to(ROOT).as_posix() in wheel
    pretrained = sorted(p.name for p in (ROOT / "snnlib" / "pretrained").iterdir())
    assert pretrained  # the saved weights and their reports
    for name in pretrained:
        # package data: the pretrained weights travel with the library
        assert f"snnlib/pretrained/{name}" in wheel, name


def _snnlib_version() -> str:
    """``__version__`` as written in snnlib/__init__.py (read, not imported)."""
    tree = ast.parse((ROOT / "snnlib" / "__init__.py").read_text())
    (value,) = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and any(getattr(t, "id", None) == "__version__" for t in node.targets)]
    return value


def test_wheel_metadata_licence_version_urls_and_types(wheel):
    names, metadata = wheel
    fields = [tuple(line.split(": ", 1)) for line in metadata.splitlines() if ": " in line]
    # the one version source: pyproject reads snnlib.__version__, and the wheel carries it
    assert ("Version", _snnlib_version()) in fields
    assert "version" not in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert ("License", "MIT") in fields
    assert ("Classifier", "License :: OSI Approved :: MIT License") in fields
    assert ("Author", "The snnlib course authors") in fields
    urls = dict(value.split(", ", 1) for key, value in fields if key == "Project-URL")
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    # the licence text and the typing marker travel with the wheel
    assert any(name.endswith(".dist-info/LICENSE") for name in names), names[-10:]
    assert "snnlib/py.typed" in names


def test_licences_citation_and_changelog_agree_with_the_sources():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = config["repository"]["url"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # CITATION.cff says the same version, licence and address as the package and the book
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == _snnlib_version()
    assert citation["license"] == project["license"]["text"] == "MIT"
    assert citation["repository-code"] == repository
    assert all(url.startswith(repository) for url in project["urls"].values()), project["urls"]
    # both licences are there, each the full text, and the book's footer names them
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    text = (ROOT / "LICENSE-TEXT").read_text()
    assert "Attribution 4.0 International Public License" in text and len(text) > 15000
    footer = config["html"]["extra_footer"]
    assert "CC-BY-4.0" in footer and "MIT" in footer
    # the changelog has a section for the current version
    assert f"## [{_snnlib_version()}]" in (ROOT / "CHANGELOG.md").read_text()


#: import name -> distribution name, where they differ
DISTRIBUTIONS = {"tensorflow": "tensorflow-cpu", "nengo_dl": "nengo-dl"}


def imported_packages():
    """Top-level names of the third-party packages imported anywhere in snnlib/."""
    found = set()
    for path in (ROOT / "snnlib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return sorted(found - set(sys.stdlib_module_names) - {"snnlib", "__future__"})


def test_wheel_declares_every_direct_dependency(wheel):
    _, metadata = wheel
    required = {re.split(r"[ ;<>=!~\[]", line.split(":", 1)[1].strip())[0].lower()
                for line in metadata.splitlines() if line.startswith("Requires-Dist:")}
    imported = imported_packages()
    # the scan sees the library's imports (including the lazy ones inside functions)
    assert {"numpy", "tensorflow", "pandas", "scipy", "nengo_dl"} <= set(imported)
    missing = [name for name in imported
               if DISTRIBUTIONS.get(name, name).replace("_", "-").lower() not in required]
    # each one is a dependency of the wheel (nengo and nengo-dl through the "nengo" extra)
    assert not missing, (missing, sorted(required))
    assert re.search(r"Requires-Dist: nengo-dl.*extra == .nengo.", metadata)


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    done = subprocess.run([ruff, "check", "snnlib", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    # the configuration in pyproject.toml ([tool.ruff]) finds nothing
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def _module_name(path: Path) -> str:
    """snnlib/convert/layers/joins.py -> snnlib.convert.layers.joins; a package's __init__.py ->
    the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def snnlib_modules() -> dict[str, Path]:
    """Every module and package of snnlib, by dotted name."""
    return {_module_name(path): path for path in (ROOT / "snnlib").rglob("*.py")
            if "__pycache__" not in path.parts}


def _snnlib_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """snnlib modules a module imports, at any depth (not under ``if TYPE_CHECKING:``): ``from
    snnlib.a import b`` is module snnlib.a.b where that is a module, else snnlib.a."""
    tree = ast.parse(path.read_text())
    typing_only = {id(node) for block in ast.walk(tree)
                   if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
                   for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "snnlib":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names
                      if alias.name.split(".")[0] == "snnlib"}
    return found - {_module_name(path)}


def import_graph() -> dict[str, set[str]]:
    modules = snnlib_modules()
    return {name: _snnlib_imports(path, modules) for name, path in modules.items()}


def test_the_import_graph_has_no_circle():
    # issue 20: every import among snnlib's modules, function-level ones included, points one way
    graph = import_graph()
    # the scan sees imports in subpackages (convert's layer modules read its builder)
    assert "snnlib.convert.builder" in graph["snnlib.convert.layers.joins"]
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError(f"import circle: {' -> '.join(path[path.index(module):])} -> "
                                 f"{module}")
        if module in done:
            return
        path.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


#: The pipeline's layers, each subpackage importing only itself and the ones before it ("base":
#: snnlib's top-level modules config, validation, progress, claims).
LAYERS = ["base", "network", "analysis", "normalize", "convert", "sim", "experiments", "ann",
          "nengo"]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or f"snnlib.{parts[-1]}" in PACKAGES else "base"


PACKAGES = {f"snnlib.{name}" for name in LAYERS[1:]}


def layering_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, imported module) pairs where a subpackage imports a later one."""
    return [(module, target) for module, targets in graph.items()
            if module != "snnlib" and module != "snnlib._moved" for target in targets
            if target != "snnlib" and LAYERS.index(_layer(target)) > LAYERS.index(_layer(module))]


def test_each_subpackage_imports_only_earlier_stages():
    graph = import_graph()
    packages = {name for name, path in snnlib_modules().items()
                if path.name == "__init__.py" and name.count(".") == 1}
    # every subpackage has its place in the order
    assert packages == PACKAGES
    assert layering_violations(graph) == []
    # the check can fail: a network module importing the simulator would be caught
    broken = dict(graph, **{"snnlib.network.graph": {"snnlib.sim.simulator"}})
    assert layering_violations(broken) == [("snnlib.network.graph", "snnlib.sim.simulator")]


def test_the_old_module_names_warn_and_forward():
    code = ("import pickle, warnings, snnlib\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            "    from snnlib.ops import DenseOp\n"
            "    import snnlib.nengo_bridge as bridge\n"
            "    run = bridge.run_nengo\n"
            "    from snnlib.simulate import SimulationResult, simulate\n"
            "    from snnlib.zoo import RECOMMENDED_SIMULATION\n"
            "    from snnlib.normalize import NORMALIZATIONS, statistics\n"
            "    from snnlib.convert import readout_note, fold_forward\n"
            "    pickled = pickle.dumps(DenseOp(1.0))\n"
            "assert DenseOp is snnlib.network.ops.DenseOp and run is snnlib.run_nengo\n"
            "# importing the old module does not replace the function snnlib.simulate\n"
            "assert callable(snnlib.simulate) and simulate is snnlib.simulate\n"
            "assert pickle.loads(pickled).kernel == 1.0\n"
            "messages = [str(w.message) for w in seen if w.category is FutureWarning]\n"
            "assert len(messages) == 3, messages\n"
            "assert 'snnlib.ops moved to snnlib.network.ops' in messages[0], messages\n"
            "assert 'snnlib.nengo_bridge moved to snnlib.nengo.bridge' in messages[1], messages\n"
            "assert 'snnlib.simulate moved to snnlib.sim.simulator' in messages[2], messages\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_each_module_imports_alone():
    # in a fresh interpreter each, so that no module works only after another was imported
    from concurrent.futures import ThreadPoolExecutor

    modules = sorted(set(snnlib_modules()) - {"snnlib"})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def load(module):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        return module, done.returncode, done.stderr[-500:]

    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(m, err) for m, code, err in pool.map(load, modules) if code != 0]
    assert not failed, failed


def _declared_all(tree: ast.Module) -> list[str] | None:
    """The literal ``__all__`` list of a module, or None when it has none."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                for t in node.targets):
            return list(ast.literal_eval(node.value))
    return None


def _bound_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level (definitions, assignments and imports)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _documented(tree: ast.Module, lines: list[str]) -> dict[str, bool]:
    """Top-level public names defined in a module -> whether they are documented (a docstring,
    or a ``#:`` comment above a constant, as Sphinx reads it)."""
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = ast.get_docstring(node) is not None
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            above = lines[node.lineno - 2].lstrip() if node.lineno > 1 else ""
            for target in targets:
                if isinstance(target, ast.Name) and target.id != "__all__":
                    found[target.id] = above.startswith("#:")
    return {name: doc for name, doc in found.items() if not name.startswith("_")}


def test_every_module_declares_its_public_names():
    missing_all, unbound, left_out = [], [], []
    for module, path in snnlib_modules().items():
        text = path.read_text()
        tree = ast.parse(text)
        declared = _declared_all(tree)
        if declared is None:
            missing_all.append(module)
            continue
        lazy = {"SpikingIntegrateAndFire"} if module == "snnlib" else set()  # __getattr__
        unbound += [(module, name) for name in declared
                    if name not in _bound_names(tree) | lazy]
        documented = _documented(tree, text.splitlines())
        private = any(part.startswith("_") for part in module.split("."))
        left_out += [(module, name) for name, doc in documented.items()
                     if doc and name not in declared and name.isupper() and not private]
    # each module says what it offers (``from module import *`` and the API pages follow it;
    # helpers that other snnlib modules call stay out of it) ...
    assert not missing_all, missing_all
    # ... names only what it defines or imports ...
    assert not unbound, unbound
    # ... and declares each constant it documents (``#:``)
    assert not left_out, left_out
