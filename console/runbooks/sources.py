"""The runbooks as sources in git: stripped of outputs, in one normalised form, so a diff shows only code.

A notebook saved from Jupyter carries its outputs, execution counts, widget state and the author's kernel
name; committed as is, every run would change the file and a review would drown in base64 PNGs. The
committed form keeps only what a reader reviews: the cells' source, each cell's tags (the `parameters`
tag matters to papermill) and ids, and a fixed kernel spec. tests/notebooks/test_sources.py fails on any
notebook not in this form; after editing one in Jupyter, run

    python -m console.runbooks.sources notebooks/*.ipynb

to rewrite it (`--check` only reports). The record of a run is the executed copy under notebooks/runs/.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
NB_MINOR = 5  # nbformat 4.5: cells have ids


def stripped(notebook: Any) -> Any:
    """A copy of `notebook` in the committed form."""
    import nbformat

    clean = nbformat.v4.new_notebook()
    clean.nbformat_minor = NB_MINOR
    clean.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for cell in notebook.cells:
        tags = list(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(cell.source)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_raw_cell(cell.source)
        if cell.get("id"):
            new["id"] = cell["id"]
        new.metadata = {"tags": tags} if tags else {}
        clean.cells.append(new)
    return clean


def committed_text(notebook: Any) -> str:
    import nbformat

    return nbformat.writes(stripped(notebook), version=4) + "\n"


def problems(path: Path) -> list[str]:
    """Why `path` is not in the committed form (empty when it is)."""
    import nbformat

    text = path.read_text()
    notebook = nbformat.reads(text, as_version=4)
    found = []
    for n, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            found.append(f"{path.name}: cell {n} has outputs or an execution count")
    if not found and text != committed_text(notebook):
        found.append(f"{path.name}: not in the committed form (metadata or formatting)")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.runbooks.sources",
                                     description="Strip runbook notebooks to their committed form.")
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if a notebook needs stripping")
    args = parser.parse_args(argv)
    import nbformat

    dirty = 0
    for path in args.paths:
        found = problems(path)
        if not found:
            continue
        dirty += 1
        if args.check:
            print("\n".join(found))
        else:
            path.write_text(committed_text(nbformat.read(path, as_version=4)))
            print(f"stripped {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
