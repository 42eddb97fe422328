"""The flat module names of snnlib 0.1, kept importable while users move to the subpackages.

``import snnlib.ops`` or ``from snnlib.nengo_bridge import run_nengo`` still work: the old name
is a stand-in module that forwards every attribute to the module's new home and says where that
is, once, with a ``FutureWarning`` (shown by default, also outside ``__main__``, so students see
it). ``snnlib.zoo`` and ``snnlib.stats`` stay public names without a warning. Assigning to an
attribute of a stand-in (a test's monkeypatch) does not reach the real module: patch the new
path.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

#: Old flat module name -> its home since snnlib 0.2.
MOVED = {
    "activations": "snnlib.ann.activations",
    "counts": "snnlib.sim.counts",
    "data": "snnlib.ann.data",
    "diagnostics": "snnlib.experiments.diagnostics",
    "event_driven": "snnlib.sim.event_driven",
    "measures": "snnlib.analysis.measures",
    "models": "snnlib.ann.models",
    "nengo_bridge": "snnlib.nengo.bridge",
    "nengo_import": "snnlib.nengo._import",
    "nengo_neurons": "snnlib.nengo.neurons",
    "nengo_scales": "snnlib.nengo.scales",
    "nengo_workflow": "snnlib.nengo.workflow",
    "neurons": "snnlib.sim.neurons",
    "ops": "snnlib.network.ops",
    "plots": "snnlib.experiments.plots",
    "protocol": "snnlib.analysis.protocol",
    "quantiles": "snnlib.normalize.quantiles",
    "regularize": "snnlib.ann.regularize",
    "simulate": "snnlib.sim.simulator",
    "stats": "snnlib.analysis.stats",
    "synapses": "snnlib.sim.synapses",
    "tradeoffs": "snnlib.experiments.tradeoffs",
    "zoo": "snnlib.ann.zoo",
}
#: Old names that remain public (``snnlib.zoo.build(...)``): aliases, no warning.
PUBLIC = {"stats", "zoo"}


class _MovedModule(types.ModuleType):
    """Stands in for an old module name and forwards to the new module."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(old, f"Moved to {new}.")
        self._new = new

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(self._new), name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self._new))


def load(name: str) -> types.ModuleType:
    """The module once called ``snnlib.<name>``: the module itself where the old name stays
    public, else a stand-in (after the warning)."""
    new = MOVED[name]
    if name in PUBLIC:
        return importlib.import_module(new)
    warnings.warn(f"snnlib.{name} moved to {new} in snnlib 0.2; import it from there (the old "
                  "name will be removed in 0.3)", FutureWarning, stacklevel=3)
    return _MovedModule(f"snnlib.{name}", new)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import snnlib.<old name>``: the module that :func:`load` returns."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package == "snnlib" and name in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return load(spec.name.partition(".")[2])

    def exec_module(self, module) -> None:
        pass  # the stand-in forwards; the public aliases are in sys.modules already


def alias_public() -> None:
    """``import snnlib.zoo`` / ``from snnlib.stats import ...``: the modules themselves."""
    for name in PUBLIC:
        sys.modules.setdefault(f"snnlib.{name}", importlib.import_module(MOVED[name]))


if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
    sys.meta_path.append(_Finder())
