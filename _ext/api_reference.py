"""Sphinx extension: the API reference (reference/*.md) documents each object once.

The pages under reference/ run autodoc, which imports snnlib (and with it TensorFlow, whose C++
log lines are silenced here as snnlib itself does). The names of the ``snnlib`` package itself
(``snnlib.convert``, ``snnlib.simulate``, ...: ``snnlib.__all__``) are documented on
reference/api.md under those names; the module-by-module pages of the subpackages skip them, and
a module skips the classes and functions it imports from another snnlib module (documented
there), so that every cross-reference has one target and no object is described twice.

A constant of the package (``snnlib.DT``) gets the ``#:`` comment of the module that defines it,
not the docstring of its type (``float``).
"""
import functools
import inspect
import os
import sys

from sphinx.pycode import ModuleAnalyzer

_current = {"module": None}


@functools.cache
def _top_level_objects():
    import snnlib

    return {id(getattr(snnlib, name)) for name in snnlib.__all__}


def _note_module(app, what, name, obj, options, lines):
    if what == "module":
        # autodoc processes a module's docstring before it lists the module's members
        _current["module"] = name
    elif what == "data" and name.count(".") == 1 and name.startswith("snnlib."):
        attr = name.split(".")[1]
        for modname, module in sorted(sys.modules.items()):
            if modname.startswith("snnlib.") and getattr(module, attr, None) is obj:
                try:
                    comment = ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", attr))
                except Exception:  # a module without source: keep what autodoc found
                    continue
                if comment:
                    lines[:] = list(comment)
                    return


def _skip_member(app, what, name, obj, skip, options):
    if what != "module":
        return None
    if id(obj) in _top_level_objects():
        return True  # on reference/api.md, as snnlib.<name>
    defined_in = getattr(obj, "__module__", None) or ""
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and defined_in.startswith("snnlib.") \
            and _current["module"] and defined_in != _current["module"]:
        return True  # imported from the snnlib module that documents it
    return None


def setup(app):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.connect("autodoc-process-docstring", _note_module)
    app.connect("autodoc-skip-member", _skip_member)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
