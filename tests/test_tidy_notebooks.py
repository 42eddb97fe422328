"""tools/tidy_notebooks.py: the chapters' check cells are folded in the book (hide-input tag)."""
import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.fixture(scope="module")
def tidy():
    spec = importlib.util.spec_from_file_location("tidy_notebooks", ROOT / "tools" / "tidy_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code(source, tags=None, outputs=()):
    metadata = {"tags": list(tags)} if tags is not None else {}
    return {"cell_type": "code", "execution_count": 1, "metadata": metadata,
            "outputs": list(outputs), "source": source.splitlines(keepends=True)}


def test_recognizes_check_cells(tidy):
    # a "# Checks" comment on the first non-blank line, or a call of the claim helper
    assert tidy.is_check_cell(code("# Checks behind the text above.\nassert x == 1\n"))
    assert tidy.is_check_cell(code("\n#  Checks: the accuracy\nassert acc > 0.9"))
    assert tidy.is_check_cell(code('claim(acc > 0.9, "accuracy above 90 %", acc=acc)'))
    assert tidy.is_check_cell(code('x = 1\nchecks.claim(x == 1, "one")'))
    # not: ordinary code, a claim only mentioned in a comment, other helpers, markdown cells
    assert not tidy.is_check_cell(code("model.fit(x, y)\n# Checks come later"))
    assert not tidy.is_check_cell(code("# see claim(...) in chapter 2\nx = 1"))
    assert not tidy.is_check_cell(code("reclaim(memory)\nclaims = []"))
    assert not tidy.is_check_cell({"cell_type": "markdown", "metadata": {}, "source": "# Checks"})


def test_tags_only_untagged_check_cells_and_keeps_other_tags(tidy):
    notebook = {"cells": [
        code("# Checks\nassert True", outputs=[{"output_type": "stream", "name": "stdout", "text": "ok\n"}]),
        code("# Checks\nassert True", tags=["remove-output"]),
        code("# Checks\nassert True", tags=["hide-input"]),
        code("plot()"),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    before = copy.deepcopy(notebook)
    assert tidy.tag_check_cells(notebook) == [0, 1]
    assert [c["metadata"].get("tags") for c in notebook["cells"]] == [
        ["hide-input"], ["remove-output", "hide-input"], ["hide-input"], None]
    # outputs, sources and everything else are untouched
    for old, new in zip(before["cells"], notebook["cells"], strict=True):
        assert {k: v for k, v in old.items() if k != "metadata"} == {k: v for k, v in new.items() if k != "metadata"}
    # a second run finds nothing to do
    assert tidy.tag_check_cells(notebook) == []


def test_rewrites_a_chapter_changing_only_tags(tidy, tmp_path):
    source = CHAPTERS[0]
    original = json.loads(source.read_text(encoding="utf-8"))
    # strip the tag from a copy of the chapter, as a freshly edited notebook would be
    for cell in original["cells"]:
        if tidy.is_check_cell(cell):
            tags = [t for t in cell["metadata"].get("tags", []) if t != tidy.TAG]
            cell["metadata"].pop("tags", None)
            if tags:
                cell["metadata"]["tags"] = tags
    path = tmp_path / source.name
    path.write_text(tidy.dumps(original), encoding="utf-8")
    untagged = tidy.tidy(path, check_only=True)
    assert untagged and path.read_text(encoding="utf-8") == tidy.dumps(original)  # --check writes nothing

    assert tidy.tidy(path) == untagged
    text = path.read_text(encoding="utf-8")
    tidied = json.loads(text)
    # nbformat's layout: sorted keys, indent 1, a trailing newline, non-ASCII kept as is
    assert text == json.dumps(tidied, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    # only the tags changed
    for index, (old, new) in enumerate(zip(original["cells"], tidied["cells"], strict=True)):
        if index in untagged:
            assert new["metadata"]["tags"][-1] == tidy.TAG
            new = copy.deepcopy(new)
            new["metadata"]["tags"].pop()
            if not new["metadata"]["tags"]:
                del new["metadata"]["tags"]
        assert new == old
    assert {k: v for k, v in tidied.items() if k != "cells"} == {k: v for k, v in original.items() if k != "cells"}
    # idempotent: a second run leaves the bytes alone
    assert tidy.tidy(path) == []
    assert path.read_text(encoding="utf-8") == text


def test_main_check_mode_exit_status(tidy, tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    notebook = {"cells": [code("# Checks\nassert True")], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(tidy.dumps(notebook), encoding="utf-8")
    assert tidy.main(["--check", str(path)]) == 1
    assert "tidy-notebooks" in capsys.readouterr().out
    assert tidy.main([str(path)]) == 0
    assert tidy.main(["--check", str(path)]) == 0


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_every_check_cell_is_folded(tidy, chapter):
    notebook = json.loads(chapter.read_text(encoding="utf-8"))
    untagged = tidy.untagged_check_cells(notebook)
    # check cells are folded in the book; the fix is one command, and touches only metadata
    assert not untagged, (
        f"{chapter.name}: check cells {untagged} lack the 'hide-input' tag: run `python3 dev.py tidy-notebooks`"
    )


def test_chapters_are_written_the_nbformat_way(tidy):
    # the tool rewrites a notebook in nbformat's layout; the chapters are stored in that layout,
    # so tagging a cell changes a few lines of metadata and nothing else in the diff
    for chapter in CHAPTERS:
        text = chapter.read_text(encoding="utf-8")
        assert tidy.dumps(json.loads(text)) == text, chapter.name
