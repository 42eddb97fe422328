"""Reading a submitted notebook without trusting anything in it.

A submission is read once, into memory, at the start of a grading run (a notebook that later
rewrites other files changes nothing): regular files only (a symlink to ``/dev/zero`` or a FIFO
is refused before any read), at most :data:`MAX_BYTES`, JSON with a list of cells. Metadata is
only used to recognize the assignment, and only when it is a string naming one; points never
come from the notebook.
"""
import glob
import json
import os
import stat

MAX_BYTES = 20 * 2**20       # a notebook larger than this is not graded
MAX_CELLS = 2000
MAX_CELL_CHARS = 200_000
PLACEHOLDER = "_Type your answer here, replacing this text._"
BEGIN, END = "<!-- BEGIN QUESTION -->", "<!-- END QUESTION -->"


class Unreadable(ValueError):
    """Not a notebook that can be graded; the message says why."""


def read_bytes(path, limit=MAX_BYTES):
    """The file's bytes: a regular file (symlinks followed), at most ``limit`` bytes."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise Unreadable(f"cannot open it ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise Unreadable("not a regular file")
    if info.st_size > limit:
        raise Unreadable(f"larger than {limit // 2**20} MiB ({info.st_size} bytes)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise Unreadable(f"cannot open it ({error.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between stat and open
            raise Unreadable("not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise Unreadable(f"larger than {limit // 2**20} MiB")
    return b"".join(chunks)


def parse(data):
    """The notebook as a dict with a list of cells (checked, not trusted further)."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Unreadable(f"not a notebook (not JSON: {type(error).__name__})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise Unreadable("not a notebook (no list of cells)")
    if len(nb["cells"]) > MAX_CELLS:
        raise Unreadable(f"more than {MAX_CELLS} cells")
    return nb


def source_of(cell):
    """A cell's text, or None when it is malformed (then it is neither checked nor run)."""
    if not isinstance(cell, dict):
        return None
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        source = "".join(source)
    if not isinstance(source, str) or len(source) > MAX_CELL_CHARS:
        return None
    return source


def code_cells(nb):
    """``[(cell index, source), ...]`` for the well-formed code cells, in order."""
    cells = []
    for index, cell in enumerate(nb["cells"]):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = source_of(cell)
            if source is not None:
                cells.append((index, source))
    return cells


def identify(nb, filename, known):
    """The assignment of a submission: otter's ``assignment_name`` metadata when it names a known
    assignment, else a file name starting with a known name or its two-digit number."""
    metadata = nb.get("metadata")
    otter = metadata.get("otter") if isinstance(metadata, dict) else None
    name = otter.get("assignment_name") if isinstance(otter, dict) else None
    if isinstance(name, str) and name in known:
        return name
    stem = os.path.basename(filename)
    for key in known:
        if stem.startswith(key):
            return key
    numbered = [key for key in known if stem[:3] == key[:3] and stem[:2].isdigit()]
    return numbered[0] if len(numbered) == 1 else None


def manual_answers(nb, names):
    """The written answers of the manual questions, in notebook order: ``{name: text}``.

    otter assign wraps each manually graded question (its prompt, then the answer cells) between
    ``<!-- BEGIN QUESTION -->`` and ``<!-- END QUESTION -->`` comments; the n-th such region is
    the n-th manual question. A region left as the placeholder gives an empty answer.
    """
    regions, current = [], None
    for cell in nb["cells"]:
        source = source_of(cell)
        if source is None:
            continue
        if BEGIN in source:
            current = []
            regions.append(current)
            source = source.split(BEGIN, 1)[1]
            if END in source:
                current = None
            continue  # the prompt
        if current is not None:
            text, ended = (source.split(END, 1)[0], True) if END in source else (source, False)
            if text.strip():
                current.append(text.strip())
            if ended:
                current = None
    answers = {}
    for name, region in zip(names, regions):
        text = "\n\n".join(region).replace(PLACEHOLDER, "").strip()
        answers[name] = text[:5000]
    return answers


def find_submission_here():
    """The code cells of the one notebook in the working directory (otter's autograder runs the
    hidden tests there), or None."""
    found = glob.glob("*.ipynb")
    if len(found) != 1:
        return None
    try:
        return code_cells(parse(read_bytes(found[0])))
    except Unreadable:
        return None
