"""Import ``nengo`` and ``nengo_dl`` once, quietly: the one place both Nengo modules get them.

:mod:`snnlib.nengo.bridge` and :mod:`snnlib.nengo.neurons` both need the two packages; keeping
the import here lets the bridge use the neuron types without the two modules importing each
other.
"""
from __future__ import annotations

import warnings
from typing import Any

__all__ = ["import_nengo"]


def import_nengo() -> tuple[Any, Any]:
    """Import ``nengo`` and ``nengo_dl`` without their harmless import-time warnings.

    Returns
    -------
    nengo, nengo_dl : module
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested")
        import nengo
        import nengo_dl
    return nengo, nengo_dl
