"""A reader who changes a chapter's settings gets notes, not a stopped notebook.

Chapter 3's exercise invites running longer (``n_steps`` 30 -> 100) and its last section uses
``scale_firing_rates=100``. With other values some of the book's sentences stop holding; outside
the test suite (no ``SNNLIB_STRICT_CLAIMS``) the check cells must then print notes and the
notebook must run to the end.
"""
import json
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHAPTER3 = ROOT / "chapters" / "03_spiking_neurons.ipynb"


def settings_cell(notebook):
    cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(cells) == 1, "chapter 3 has one settings cell tagged 'parameters'"
    return cells[0]


def test_chapter3_declares_its_settings():
    cell = settings_cell(nbformat.read(CHAPTER3, as_version=4))
    assert re.search(r"^n_steps = 30\b", cell.source, re.M)
    assert re.search(r"^scale_firing_rates = 100\b", cell.source, re.M)


def test_chapter3_with_a_readers_settings_runs_to_the_end(monkeypatch, tmp_path):
    notebook = nbformat.read(CHAPTER3, as_version=4)
    cell = settings_cell(notebook)
    cell.source = re.sub(r"^n_steps = 30\b", "n_steps = 100", cell.source, flags=re.M)
    cell.source = re.sub(r"^scale_firing_rates = 100\b", "scale_firing_rates = 300",
                         cell.source, flags=re.M)
    # a reader's own run: claims print notes instead of raising
    monkeypatch.setenv("SNNLIB_STRICT_CLAIMS", "0")
    monkeypatch.setenv("SNNLIB_PROGRESS", "0")
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError if any cell fails
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    notes = re.findall(r"Note: the book's claim \"([^\"]+)\"", text)
    # the settings changed the results: several sentences no longer hold, and say so
    assert notes, "no claim printed a note with the changed settings"
    assert all("holds for the book's settings" in line
               for line in text.splitlines() if line.startswith("Note:"))
    (tmp_path / "notes.json").write_text(json.dumps(notes, indent=1))
