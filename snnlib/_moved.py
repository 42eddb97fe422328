"""The flat module names of snnlib 0.1, kept importable while users move to the subpackages.

``import snnlib.ops`` or ``from snnlib.nengo_bridge import run_nengo`` still work: each old
name is a stand-in module, registered in ``sys.modules`` when snnlib is imported, that forwards
every attribute to the module's new home and says where that is, once, with a ``FutureWarning``
(shown by default, also outside ``__main__``, so students see it) at its first use. Being
registered up front matters for ``snnlib.simulate``: importing it as a module must not replace
the function ``snnlib.simulate`` (Python sets a newly imported submodule as an attribute of its
package). ``snnlib.zoo`` and ``snnlib.stats`` stay public names, without a warning. Assigning
to an attribute of a stand-in (a test's monkeypatch) does not reach the real module: patch the
new path.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

__all__ = []  # internal: its names are used by snnlib's own modules only

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
        self._warned = False

    def __getattr__(self, name: str):
        if name.startswith("__") and name != "__all__":
            raise AttributeError(name)  # the import machinery's questions: not a use
        if not self._warned:
            self._warned = True
            warnings.warn(f"{self.__name__} moved to {self._new} in snnlib 0.2; import it "
                          "from there (the old name will be removed in 0.3)", FutureWarning,
                          stacklevel=2)
        module = importlib.import_module(self._new)
        if name == "__all__":  # from snnlib.<old> import *
            return getattr(module, "__all__",
                           [key for key in vars(module) if not key.startswith("_")])
        return getattr(module, name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self._new))


def install() -> None:
    """Register the old names in ``sys.modules``: stand-ins, and the public aliases (``import
    snnlib.zoo`` / ``from snnlib.stats import ...``: the modules themselves)."""
    for name, new in MOVED.items():
        if name in PUBLIC:
            sys.modules.setdefault(f"snnlib.{name}", importlib.import_module(new))
        else:
            sys.modules.setdefault(f"snnlib.{name}", _MovedModule(f"snnlib.{name}", new))


def load(name: str) -> types.ModuleType:
    """The module once called ``snnlib.<name>`` (``snnlib.ops`` as an attribute)."""
    return sys.modules[f"snnlib.{name}"]
