"""Make the student versions of the assignments from the instructor sources, and check them.

An instructor edits only ``assignments/source/NN_name.ipynb``. In its code cells, each solution
is written between two marker lines, with a hint as the first line(s) inside::

    def if_layer(current, n_steps, *, dt=0.001):
        \"\"\"Docstring the student sees.\"\"\"
        ### BEGIN SOLUTION
        # HINT: accumulate the voltage; count floor(v) spikes; subtract them.
        ...solution...
        ### END SOLUTION

The student version replaces each region by one line, at the marker's indentation::

        raise NotImplementedError("Student exercise: accumulate the voltage; ...")

Cells tagged ``remove-student`` are left out of the student version (e.g. instructor notes);
outputs, execution counts and all cell metadata except ``tags`` are dropped, so no solution
survives anywhere in the student file.
"""
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = ROOT / "assignments" / "source"
STUDENT_DIR = ROOT / "assignments" / "student"
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "# HINT:"
STUB = 'raise NotImplementedError("Student exercise: {hint}")'
STUB_PATTERN = re.compile(r'^(\s*)raise NotImplementedError\("Student exercise: ', re.M)
REMOVE_TAG = "remove-student"
KEEP_CELL_METADATA = ("tags",)


class SourceError(ValueError):
    """A malformed instructor notebook (unbalanced markers, a region without a hint...)."""


def regions(source, where=""):
    """The solution regions of a cell's code: list of (begin line, end line, indent, hint)."""
    found, begin = [], None
    lines = source.splitlines()
    for i, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise SourceError(f"{where} line {i + 1}: {BEGIN} inside another solution region")
            begin = i
        elif marker == END:
            if begin is None:
                raise SourceError(f"{where} line {i + 1}: {END} without {BEGIN}")
            hints = []
            for inner in lines[begin + 1:i]:
                if not inner.strip().startswith(HINT):
                    break
                hints.append(inner.strip()[len(HINT):].strip())
            if not hints:
                raise SourceError(f"{where} line {begin + 1}: the solution region needs a "
                                  f"'{HINT} ...' line first (it becomes the stub's message)")
            indent = lines[begin][:len(lines[begin]) - len(lines[begin].lstrip())]
            found.append((begin, i, indent, " ".join(hints)))
            begin = None
        elif BEGIN in line or END in line:
            raise SourceError(f"{where} line {i + 1}: a marker must be alone on its line: {line!r}")
    if begin is not None:
        raise SourceError(f"{where} line {begin + 1}: {BEGIN} without {END}")
    return found


def stub_code(source, where=""):
    """The cell's code with every solution region replaced by its stub."""
    lines = source.splitlines()
    out, last = [], 0
    for begin, end, indent, hint in regions(source, where):
        out += lines[last:begin]
        escaped = hint.replace("\\", "\\\\").replace('"', '\\"')
        out.append(indent + STUB.format(hint=escaped))
        last = end + 1
    out += lines[last:]
    return "\n".join(out)


def student_notebook(source_nb, name=""):
    """A new notebook: the student version of ``source_nb`` (not modified)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {key: source_nb.metadata[key] for key in ("kernelspec", "snnlib_course")
                   if key in source_nb.metadata}
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(source_nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if REMOVE_TAG in tags:
            continue
        metadata = {k: v for k, v in cell.get("metadata", {}).items() if k in KEEP_CELL_METADATA}
        if cell.cell_type == "code":
            code = stub_code(cell.source, f"{name} cell {index}")
            new = nbformat.v4.new_code_cell(code, metadata=metadata)
        elif cell.cell_type == "markdown":
            if BEGIN in cell.source or END in cell.source:
                raise SourceError(f"{name} cell {index}: solution markers work in code cells only")
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=metadata)
        else:
            new = nbformat.v4.new_raw_cell(cell.source, metadata=metadata)
        new.id = cell.get("id") or f"cell-{index}"
        nb.cells.append(new)
    return nb


def render(nb):
    """Notebook text, deterministic (the same source always gives the same bytes)."""
    return nbformat.writes(nb) + "\n"


def sources(source_dir=SOURCE_DIR):
    return sorted(Path(source_dir).glob("[0-9][0-9]_*.ipynb"))


def generate(source_dir=SOURCE_DIR, student_dir=STUDENT_DIR):
    """Write every student version; return the paths written."""
    written = []
    Path(student_dir).mkdir(parents=True, exist_ok=True)
    for path in sources(source_dir):
        text = render(student_notebook(nbformat.read(path, as_version=4), path.name))
        target = Path(student_dir) / path.name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def defined_names(code):
    """Function names defined at the top level of a cell."""
    return set(re.findall(r"^def (\w+)\(", code, re.M))


def problems(source_dir=SOURCE_DIR, student_dir=STUDENT_DIR):
    """Everything that is wrong with the sources or the committed student versions.

    Returns
    -------
    list of str
        Empty when the student versions are up to date, every solution region has exactly one
        stub in the same cell and vice versa, no solution text is left in a student file, and
        every registered question's function is defined in a cell with a solution region.
    """
    from snnlib.course.questions import ASSIGNMENTS

    found = []
    paths = sources(source_dir)
    keys = {p.stem for p in paths}
    for key in sorted(set(ASSIGNMENTS) - keys):
        found.append(f"assignment {key} is registered but {Path(source_dir) / key}.ipynb is missing")
    students = {p.name for p in Path(student_dir).glob("*.ipynb")}
    for extra in sorted(students - {p.name for p in paths}):
        found.append(f"{Path(student_dir) / extra} has no source notebook (delete it)")
    for path in paths:
        try:
            source_nb = nbformat.read(path, as_version=4)
            expected = render(student_notebook(source_nb, path.name))
        except (SourceError, nbformat.ValidationError) as error:
            found.append(f"{path.name}: {error}")
            continue
        key = source_nb.metadata.get("snnlib_course", {}).get("assignment")
        if key != path.stem:
            found.append(f"{path.name}: metadata snnlib_course.assignment is {key!r}, "
                         f"expected {path.stem!r}")
        target = Path(student_dir) / path.name
        if not target.exists():
            found.append(f"{target} is missing: run `python -m snnlib.course generate`")
            continue
        if target.read_text(encoding="utf-8") != expected:
            found.append(f"{target} is stale (not what {path.name} generates): run "
                         "`python -m snnlib.course generate`")
        found += match_stubs(source_nb, nbformat.read(target, as_version=4), path.name)
        if path.stem in ASSIGNMENTS:
            solved = set()
            for cell in source_nb.cells:
                if cell.cell_type == "code" and regions(cell.source):
                    solved |= defined_names(cell.source)
            for question in ASSIGNMENTS[path.stem].questions:
                for name in question.names:
                    if name not in solved:
                        found.append(f"{path.name}: question {question.id} grades {name}(), "
                                     "which no cell with a solution region defines")
        else:
            found.append(f"{path.name}: no questions registered in snnlib/course/questions.py")
    return found


def match_stubs(source_nb, student_nb, name):
    """Each source cell's regions have as many stubs in the student cell with the same id."""
    found = []
    student_cells = {cell.get("id"): cell for cell in student_nb.cells}
    for index, cell in enumerate(source_nb.cells):
        if cell.cell_type != "code" or REMOVE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        n_regions = len(regions(cell.source))
        other = student_cells.get(cell.get("id"))
        if other is None:
            found.append(f"{name} cell {index}: no student cell with id {cell.get('id')!r}")
            continue
        n_stubs = len(STUB_PATTERN.findall(other.source))
        if n_stubs != n_regions:
            found.append(f"{name} cell {index}: {n_regions} solution region(s) but {n_stubs} "
                         "stub(s) in the student version")
    for index, cell in enumerate(student_nb.cells):
        leaked = [m for m in (BEGIN, END, HINT) if m in cell.source]
        if leaked or cell.get("outputs") or set(cell.get("metadata", {})) - set(KEEP_CELL_METADATA):
            found.append(f"{name} student cell {index}: solution markers, outputs or metadata "
                         "left in the student version")
    return found
