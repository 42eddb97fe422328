"""What an answer's code may use, read from its syntax tree before anything runs.

Two levels:

1. **The whole notebook** (:func:`notebook_findings`): no code that can reach outside the
   notebook or change how other code behaves: no ``exec``/``eval``/``open``/``getattr``/
   ``globals()``..., no dunder attributes (``snnlib.__file__``, ``f.__globals__``), no imports
   outside :data:`MODULES`, no ``os`` beyond ``os.environ``, no file readers or writers of the
   allowed libraries (``np.load``, ``tf.io``, ``plt.savefig``...), no attribute assignment
   (monkeypatching), no module passed around as a value. A notebook with such code is not run:
   every question gets 0 and the gradebook flags it for an instructor.
2. **Each answer** (:func:`question_findings`): the graded functions and every top-level
   statement that can define or change what they use (assignments, mutations, calls that receive
   a global), followed transitively, may only use the modules and names the question allows
   (:attr:`course.questions.Question.allowed`), e.g. NumPy but not ``snnlib.sim.simulator`` for a
   question that asks to implement the neuron. A violation is a 0 for that question.

Scoping comes from :mod:`symtable` (a function's parameters and locals are not globals), so an
honest notebook whose other cells call ``snnlib`` for comparison is not flagged.
"""
import ast
import importlib
import symtable
import types
from dataclasses import dataclass, field

MODULES = {  # top-level modules a graded notebook may import
    "numpy", "math", "cmath", "snnlib", "tensorflow", "keras", "matplotlib", "otter", "os",
    "time", "random", "statistics", "collections", "itertools", "functools", "fractions",
    "decimal", "string", "textwrap", "pprint", "warnings", "__future__", "numbers", "copy",
    "heapq", "bisect", "datetime",
}
ONLY = {  # modules of which only these names may be used
    "os": ("os.environ",),
    "otter": ("otter.Notebook",),
}
DENIED = (  # dotted names no notebook may use (prefixes)
    "numpy.load", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile", "numpy.fromregex",
    "numpy.memmap", "numpy.DataSource", "numpy.ctypeslib", "numpy.lib", "numpy.core",
    "numpy._core", "numpy.distutils", "numpy.f2py", "numpy.testing", "numpy.save",
    "numpy.savez", "numpy.savez_compressed", "numpy.savetxt", "numpy.seterrcall",
    "numpy.source", "numpy.info", "numpy.lookfor",
    "tensorflow.io", "tensorflow.data", "tensorflow.compat", "tensorflow.raw_ops",
    "tensorflow.py_function", "tensorflow.numpy_function", "tensorflow.saved_model",
    "tensorflow.sysconfig", "tensorflow.load_op_library", "tensorflow.load_library",
    "tensorflow.summary", "tensorflow.lite", "tensorflow.distribute", "tensorflow.autograph",
    "tensorflow.keras.utils", "tensorflow.keras.models.load_model", "tensorflow.keras.saving",
    "tensorflow.keras.preprocessing", "tensorflow.keras.callbacks", "tensorflow.keras.backend",
    "keras.utils", "keras.models.load_model", "keras.saving", "keras.preprocessing",
    "keras.callbacks", "keras.backend", "keras.src",
    "matplotlib.image", "matplotlib.cbook", "matplotlib.rc_file", "matplotlib.testing",
)
BUILTINS = {  # builtins that run code, read files, or reach any object by name
    "eval", "exec", "compile", "open", "globals", "locals", "vars", "getattr", "setattr",
    "delattr", "breakpoint", "input", "help", "get_ipython",
}
ATTRIBUTES = {  # attribute names that read/write files, run commands or reach frames
    "load", "loads", "loadtxt", "genfromtxt", "fromfile", "fromregex", "memmap", "tofile",
    "dump", "dumps", "save", "savez", "savetxt", "savefig", "imread", "imsave", "rc_file",
    "load_model", "load_weights", "save_weights", "read_text", "read_bytes", "write_text",
    "write_bytes", "open", "system", "popen", "spawn", "fork", "kill", "killpg",
    "f_globals", "f_locals", "f_back", "f_builtins", "f_code", "gi_frame", "cr_frame",
    "ag_frame", "tb_frame", "tb_next", "run_cell", "run_line_magic", "run_cell_magic",
    "export", "to_pdf", "run_plugin", "add_plugin_files",
}
RESOLVED_DENIED = (  # where the DENIED names really live (libraries re-export under other names)
    "numpy.lib.npyio", "numpy.lib.format", "numpy.core.memmap", "numpy.ctypeslib",
    "tensorflow._api.v2.io", "tensorflow._api.v2.data", "tensorflow._api.v2.compat",
    "tensorflow._api.v2.raw_ops", "tensorflow._api.v2.saved_model", "tensorflow._api.v2.summary",
    "tensorflow._api.v2.sysconfig", "tensorflow._api.v2.lite", "tensorflow._api.v2.distribute",
    "tensorflow._api.v2.autograph", "tensorflow.python.lib.io", "tensorflow.python.ops.io_ops",
    "tensorflow.python.ops.gen_io_ops", "tensorflow.python.data", "tensorflow.python.ops.script_ops",
    "tensorflow.python.saved_model", "tensorflow.python.framework.load_library",
    "tensorflow.python.platform", "keras.api._v2.keras.utils", "keras.utils", "keras.saving",
    "keras.preprocessing", "keras.callbacks", "keras.backend", "matplotlib.image",
    "matplotlib.cbook",
)
DUNDERS_ALLOWED = {"__init__", "__name__", "__doc__", "__version__"}
SELF = {"self", "cls"}


@dataclass(frozen=True)
class Finding:
    """One use of something not allowed: where (cell index, line) and what."""

    cell: int
    line: int
    text: str

    def __str__(self):
        return f"cell {self.cell} line {self.line}: {self.text}" if self.cell >= 0 else self.text


@dataclass
class Statement:
    """A top-level statement of the notebook, with what it binds, changes and references."""

    cell: int
    node: ast.stmt
    refs: set = field(default_factory=set)      # global names it reads
    binds: set = field(default_factory=set)     # global names it assigns
    changes: set = field(default_factory=set)   # global names it may mutate or pass on


class Notebook:
    """The parsed code cells of a notebook: ``[(cell index, source), ...]``.

    Cells that do not parse are left out (they cannot run either: the runner compiles the same
    sources with the same parser).
    """

    def __init__(self, cells):
        self.statements = []
        self.unparsed = []  # (cell index, error)
        for index, source in cells:
            try:
                tree = ast.parse(source)
            except SyntaxError as error:
                self.unparsed.append((index, f"SyntaxError: {error.msg} (line {error.lineno})"))
                continue
            except (ValueError, MemoryError, RecursionError) as error:
                self.unparsed.append((index, type(error).__name__))
                continue
            for node in tree.body:
                self.statements.append(_describe(index, node))
        self.aliases = {}   # name -> dotted path (from import statements anywhere)
        self.modules = set()  # names bound to modules by `import x` / `import x.y as z`
        self.modules_by_path = {}  # "x" or "x.y" -> module imported by the notebook
        for statement in self.statements:
            for node in ast.walk(statement.node):
                if isinstance(node, ast.Import):
                    for a in node.names:
                        name = a.asname or a.name.split(".")[0]
                        self.aliases[name] = a.name if a.asname else a.name.split(".")[0]
                        self.modules.add(name)
                        self._importable(a.name)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    self._importable(node.module)
                    for a in node.names:
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def _importable(self, dotted):
        parts = dotted.split(".")
        for n in range(1, len(parts) + 1):
            self.modules_by_path[".".join(parts[:n])] = True

    def resolve(self, node):
        """Dotted path of a Name or pure attribute chain rooted at an import alias, else None."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.aliases:
            return None
        return ".".join([self.aliases[node.id]] + parts[::-1])


def _describe(cell, node):
    statement = Statement(cell, node)
    try:
        table = symtable.symtable(ast.unparse(node), "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return statement
    for symbol in table.get_symbols():
        if symbol.is_referenced():
            statement.refs.add(symbol.get_name())
        if symbol.is_assigned() or symbol.is_imported():
            statement.binds.add(symbol.get_name())
    stack = list(table.get_children())
    while stack:
        child = stack.pop()
        stack.extend(child.get_children())
        for symbol in child.get_symbols():
            if symbol.is_global():
                if symbol.is_referenced():
                    statement.refs.add(symbol.get_name())
                if symbol.is_assigned() or symbol.is_declared_global():
                    statement.binds.add(symbol.get_name())
    statement.changes = _changed_names(node) & (statement.refs | statement.binds)
    return statement


SAFE_PARENTS = (ast.Compare, ast.BinOp, ast.UnaryOp, ast.FormattedValue, ast.Expr)
TESTS = (ast.If, ast.While, ast.IfExp, ast.Assert)


def _changed_names(tree):
    """Names the statement may mutate or hand to other code (conservative).

    A name is changed when it (or ``x[i]``, ``x.a``) is an assignment target (``H["f"] = ...``),
    the receiver of a method call (``H.append(...)``), a loop's iterable whose loop variable is
    changed, or escapes as a value (a call argument, a container element, an assigned or
    returned value...). Reading it (``x[i]`` in an expression, ``x + 1``, ``f"{x}"``, an index
    ``y[x]``, a test ``if x``) or calling it (``x(...)``) does not change it.
    """
    parents = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent
    changed, loops = set(), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name):
            continue
        top, has_attribute = node, False
        while isinstance(parents.get(top), (ast.Attribute, ast.Subscript)) \
                and parents[top].value is top:
            top = parents[top]
            has_attribute |= isinstance(top, ast.Attribute)
        parent = parents.get(top)
        if top is node and isinstance(node.ctx, ast.Store):
            continue  # a plain binding: counted in `binds`
        if isinstance(getattr(top, "ctx", None), (ast.Store, ast.Del)):
            changed.add(node.id)
        elif isinstance(parent, ast.Call) and parent.func is top:
            if has_attribute:
                changed.add(node.id)  # x.method(...) may change x
        elif isinstance(parent, (ast.For, ast.comprehension)) and parent.iter is top:
            targets = {n.id for n in ast.walk(parent.target) if isinstance(n, ast.Name)}
            loops.append((targets, node.id))
        elif isinstance(parent, ast.Subscript) and parent.slice is top:
            continue
        elif isinstance(parent, TESTS) and parent.test is top:
            continue
        elif not isinstance(parent, SAFE_PARENTS):
            changed.add(node.id)  # escapes: argument, element, assigned value, return...
    grown = True
    while grown:
        grown = False
        for targets, name in loops:
            if name not in changed and targets & changed:
                changed.add(name)
                grown = True
    return changed


# --------------------------------------------------------------------------------------------
# The whole notebook
# --------------------------------------------------------------------------------------------

def _module_allowed(path):
    top = path.split(".")[0]
    if top not in MODULES:
        return f"imports {top} (not an allowed module)"
    if top in ONLY and path != top and not _under(path, ONLY[top]):
        return f"uses {path} (of {top}, only {', '.join(ONLY[top])})"
    if _under(path, DENIED):
        return f"uses {path} (reads or writes files, or runs code)"
    return None


def _reaches(path, notebook):
    """Walk ``path`` through the real library objects: a module re-exported under another name
    (``snnlib.ann.data.os``, ``matplotlib.re.enum.bltns``) or a file reader re-exported elsewhere is
    refused like its real name. Only modules the notebook itself imports are imported here."""
    parts = path.split(".")
    known = [n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in notebook.modules_by_path]
    if not known or parts[0] not in MODULES:
        return None
    root = ".".join(parts[:known[0]])
    try:
        obj = importlib.import_module(root)
    except Exception:
        return None
    for i in range(len(root.split(".")), len(parts) + 1):
        if isinstance(obj, types.ModuleType):
            name = obj.__name__
            top = name.split(".")[0]
            if top not in MODULES:
                return f"reaches the module {name} through {'.'.join(parts[:i])}"
            if _under(name, RESOLVED_DENIED) or _under(name, DENIED):
                return f"uses {'.'.join(parts[:i])} ({name}: reads or writes files, or runs code)"
            if top in ONLY and i < len(parts) and not _under(f"{name}.{parts[i]}", ONLY[top]):
                return f"uses {'.'.join(parts[:i + 1])} (of {top}, only {', '.join(ONLY[top])})"
        else:
            owner = getattr(obj, "__module__", None)
            if isinstance(owner, str):
                top = owner.split(".")[0].lstrip("_")  # _functools, _heapq: C parts of allowed
                if owner == "builtins":
                    if getattr(obj, "__name__", None) in BUILTINS:
                        return f"uses {'.'.join(parts[:i])} (the builtin {obj.__name__})"
                elif _under(owner, RESOLVED_DENIED) or top not in MODULES:
                    return f"uses {'.'.join(parts[:i])} (defined in {owner})"
        if i == len(parts):
            return None
        try:
            obj = getattr(obj, parts[i])
        except Exception:
            return None
    return None


def _under(path, prefixes):
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def notebook_findings(notebook):
    """Everything in the notebook that reaches outside it; empty when the notebook may run."""
    findings = []

    def add(cell, node, text):
        findings.append(Finding(cell, getattr(node, "lineno", 0), text))

    for statement in notebook.statements:
        cell, parents = statement.cell, {}
        for parent in ast.walk(statement.node):
            for child in ast.iter_child_nodes(parent):
                parents[child] = parent
        for node in ast.walk(statement.node):
            if isinstance(node, ast.Import):
                for a in node.names:
                    problem = _module_allowed(a.name)
                    if problem:
                        add(cell, node, problem)
            elif isinstance(node, ast.ImportFrom):
                if node.level or not node.module:
                    add(cell, node, "a relative import")
                    continue
                for a in node.names:
                    if a.name == "*":
                        add(cell, node, f"from {node.module} import * (name what you import)")
                        continue
                    problem = _module_allowed(f"{node.module}.{a.name}")
                    if problem:
                        add(cell, node, problem)
            elif isinstance(node, ast.Name):
                if node.id in BUILTINS:
                    add(cell, node, f"uses {node.id}()")
                elif _dunder(node.id) and node.id != "__name__":
                    add(cell, node, f"uses {node.id}")
                elif node.id in notebook.modules and isinstance(node.ctx, ast.Load):
                    parent = parents.get(node)
                    if not (isinstance(parent, ast.Attribute) and parent.value is node):
                        add(cell, node, f"passes the module {notebook.aliases[node.id]} around "
                                        "as a value (use its functions directly)")
            elif isinstance(node, ast.Attribute):
                if _dunder(node.attr) and node.attr not in DUNDERS_ALLOWED:
                    add(cell, node, f"uses the attribute {node.attr}")
                elif node.attr in ATTRIBUTES:
                    add(cell, node, f"uses .{node.attr} (files, commands or frames)")
                if isinstance(node.ctx, (ast.Store, ast.Del)):
                    base = node.value
                    if not (isinstance(base, ast.Name) and base.id in SELF):
                        add(cell, node, f"assigns the attribute .{node.attr} of another object "
                                        "(monkeypatching)")
                elif node.attr.startswith("_") and not _dunder(node.attr) and not (
                        isinstance(node.value, ast.Name) and node.value.id in SELF):
                    add(cell, node, f"uses the private attribute .{node.attr}")
                path = notebook.resolve(node)
                if path and not isinstance(parents.get(node), ast.Attribute):
                    problem = _module_allowed(path) or _reaches(path, notebook)
                    if problem:
                        add(cell, node, problem)
    first = {}
    for finding in sorted(findings, key=lambda f: (f.cell, f.line, f.text)):
        first.setdefault(finding.text, finding)
    return list(first.values())


def _dunder(name):
    return name.startswith("__") and name.endswith("__")


# --------------------------------------------------------------------------------------------
# One answer
# --------------------------------------------------------------------------------------------

def closure(notebook, names):
    """The top-level statements that define, or may change, ``names`` and what they use.

    Names bound only by imports are modules or library functions: calling their methods
    (``np.random.seed(0)``, ``tf.keras.Model(...)``) does not count as changing them
    (reassigning their attributes is forbidden notebook-wide).
    """
    imported_only = set(notebook.aliases)
    for statement in notebook.statements:
        if not isinstance(statement.node, (ast.Import, ast.ImportFrom)):
            imported_only -= statement.binds
    by_name = {}
    for statement in notebook.statements:
        for name in statement.binds | (statement.changes - imported_only):
            by_name.setdefault(name, []).append(statement)
    seen_names, seen, todo = set(), [], list(names)
    while todo:
        name = todo.pop()
        if name in seen_names:
            continue
        seen_names.add(name)
        for statement in by_name.get(name, []):
            if all(statement is not s for s in seen):
                seen.append(statement)
                todo.extend(statement.refs | statement.binds | statement.changes)
    return seen


def references(notebook, node):
    """Dotted paths of the library names a statement uses: imports, and every maximal
    ``name.attr.attr`` chain whose root is an import alias."""
    parents = {}
    for parent in ast.walk(node):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            found += [(sub, a.name) for a in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
            found += [(sub, f"{sub.module}.{a.name}") for a in sub.names if a.name != "*"]
        elif isinstance(sub, ast.Name):
            top = sub
            while isinstance(parents.get(top), ast.Attribute):
                top = parents[top]
            path = notebook.resolve(top)
            if path:
                found.append((sub, path))
    return found


def question_findings(notebook, functions, allowed, denied=()):
    """What the answer's code (``functions`` and everything they use) may not use.

    Parameters
    ----------
    notebook : Notebook
    functions : sequence of str
        The graded functions.
    allowed : sequence of str
        Dotted-name prefixes the answer may use (``"numpy"``, ``"snnlib.load_mnist"``...);
        builtins and the notebook's own names are always allowed.
    denied : sequence of str
        Exceptions inside ``allowed``.

    Returns
    -------
    list of Finding
        Empty when the answer only uses what it may.
    """
    statements = closure(notebook, functions)
    findings = []
    for statement in statements:
        for node, path in references(notebook, statement.node):
            if path.split(".")[0] == "__future__":
                continue
            ok = _under(path, allowed)
            if isinstance(node, ast.Import):  # `import snnlib` to use snnlib.load_mnist
                ok = ok or any(_under(a, [path]) for a in allowed)
            if not ok or _under(path, denied):
                findings.append(Finding(statement.cell, getattr(node, "lineno", 0),
                                        f"uses {path}"))
    # the most specific name once: `snnlib.sim.simulator` rather than also `import snnlib`
    paths = {f.text[5:] for f in findings}
    first = {}
    for finding in sorted(findings, key=lambda f: (f.cell, f.line, f.text)):
        path = finding.text[5:]
        if not any(other.startswith(path + ".") for other in paths):
            first.setdefault(finding.text, finding)
    return list(first.values())


def undefined(notebook, functions):
    """A message when a graded function is defined by no statement that parses, else ''."""
    defined = set().union(*(s.binds for s in notebook.statements))
    missing = [name for name in functions if name not in defined]
    if not missing:
        return ""
    message = f"{', '.join(missing)} is not defined in the notebook"
    if notebook.unparsed:
        message += " (cells that do not parse: " + "; ".join(
            f"cell {index}: {error}" for index, error in notebook.unparsed[:3]) + ")"
    return message
