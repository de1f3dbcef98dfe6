"""Which runbooks exist and what each declares: the notebooks in notebooks/, read without running them.

A runbook is `notebooks/<procedure>.ipynb` (lowercase words and hyphens: `deploy`, `verify-rollout`); its
title and summary are its first markdown cell (a `# ` heading, then a paragraph), its parameters the cell
tagged `parameters`, read by papermill's own inspection and the convention of console/runbooks/parameters.py.
`$TODO_RUNBOOKS_DIR` points at another folder (tests).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

from console.runbooks.model import Parameter, ParameterError, Runbook, RunbookError
from console.runbooks.parameters import declare
from console.sandbox.layout import REPO_ROOT

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
ENV_DIR = "TODO_RUNBOOKS_DIR"
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")  # the procedure: deploy, verify-rollout, lag-report
PARAMETERS_TAG = "parameters"


def runbooks_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or NOTEBOOKS_DIR)


def runbook_names(directory: Path | None = None) -> list[str]:
    directory = directory or runbooks_dir()
    return sorted(p.stem for p in directory.glob("*.ipynb") if NAME.match(p.stem))


def list_runbooks(directory: Path | None = None) -> list[Runbook]:
    directory = directory or runbooks_dir()
    return [load_runbook(name, directory) for name in runbook_names(directory)]


def load_runbook(name: str, directory: Path | None = None) -> Runbook:
    """The runbook called `name`, with its parameters; RunbookError when unknown or badly declared."""
    import nbformat

    directory = directory or runbooks_dir()
    path = directory / f"{name}.ipynb"
    if not NAME.match(name) or not path.is_file():
        known = runbook_names(directory)
        raise RunbookError(f"no runbook {name!r} in {directory} (known: {', '.join(known) or 'none'})")
    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, ValueError) as exc:
        raise RunbookError(f"{path}: not a readable notebook: {exc}") from None
    title, summary = _title_and_summary(notebook)
    return Runbook(name, path, title or name, summary, _parameters(path, notebook))


def _title_and_summary(notebook: Any) -> tuple[str, str]:
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.strip().splitlines()
        if not lines or not lines[0].startswith("# "):
            return "", ""
        paragraph: list[str] = []
        for line in lines[1:]:
            if not line.strip():
                if paragraph:
                    break
                continue
            paragraph.append(line.strip())
        return lines[0][2:].strip(), " ".join(paragraph)
    return "", ""


def parameters_cell(notebook: Any) -> Any | None:
    return next((c for c in notebook.cells if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])), None)


def _parameters(path: Path, notebook: Any) -> tuple[Parameter, ...]:
    from papermill import inspect_notebook

    cell = parameters_cell(notebook)
    if cell is None:
        raise RunbookError(f"{path}: no cell tagged {PARAMETERS_TAG!r}")
    inspected = inspect_notebook(str(path))
    missed = [name for name in _assigned_names(path, cell.source) if name not in inspected]
    if missed:
        raise RunbookError(f"{path}: papermill cannot read the declaration of {', '.join(missed)} "
                           "(one `name: type = value  # comment` per line, no `=` in the comment)")
    parameters = []
    for name, info in inspected.items():
        try:
            parameters.append(declare(name, info["inferred_type_name"], info["default"], info["help"]))
        except ParameterError as exc:
            raise RunbookError(f"{path}: {exc}") from None
    return tuple(parameters)


def _assigned_names(path: Path, source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise RunbookError(f"{path}: the parameters cell is not valid Python: {exc.msg} (line {exc.lineno})") from None
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        else:
            raise RunbookError(f"{path}: the parameters cell holds only assignments (line {node.lineno} is not one)")
    return names
