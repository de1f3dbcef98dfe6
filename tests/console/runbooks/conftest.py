"""Helpers for the runner's tests: small notebooks written on the fly, in the committed (stripped) form."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from console.runbooks.sources import committed_text


def write_notebook(directory: Path, name: str, parameters: str, *cells: str, title: str = "A test runbook") -> Path:
    """`<directory>/<name>.ipynb`: a title cell, the parameters cell, then code cells (dedented)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell(f"# {title}\n\nWhat it is for, in one paragraph."))
    params = nbformat.v4.new_code_cell(textwrap.dedent(parameters).strip())
    params.metadata["tags"] = ["parameters"]
    notebook.cells.append(params)
    notebook.cells += [nbformat.v4.new_code_cell(textwrap.dedent(cell).strip()) for cell in cells]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.ipynb"
    path.write_text(committed_text(notebook))
    return path


@pytest.fixture
def books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runbooks folder of the test's own, where `todo-console runbook` and the catalog look."""
    directory = tmp_path / "notebooks"
    directory.mkdir()
    monkeypatch.setenv("TODO_RUNBOOKS_DIR", str(directory))
    return directory
