"""The runbooks as sources: committed stripped, named for their procedure, thin, and documented.

The rules of notebooks/README.md, checked on every notebook in notebooks/: outputs stripped (the committed
form of console/runbooks/sources.py), a first code cell tagged `parameters` whose declarations load (types,
constraints, defaults that obey them) and include `dry_run`, every later code cell named by a first `# `
comment line, no function, class, loop-with-state or import beyond the console's library in a cell (logic
lives in tested modules), a last cell that states the verdict, and a paragraph in notebooks/README.md.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from console.runbooks import sources
from console.runbooks.catalog import NAME, NOTEBOOKS_DIR, load_runbook, runbook_names

RUNBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EVERY_PROCEDURE = {"provision-oke", "bootstrap-cluster", "deploy", "verify-rollout", "smoke-test", "lag-report",
                   "dlq-triage", "kafka-outage-drill"}  # issue 13
FORBIDDEN = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.While, ast.Try, ast.With, ast.Lambda)


def test_every_runbook_is_there() -> None:
    assert {p.stem for p in RUNBOOKS} >= EVERY_PROCEDURE
    assert runbook_names() == [p.stem for p in RUNBOOKS], "every notebook is named for its procedure, in lowercase"


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_committed_stripped(path: Path) -> None:
    assert sources.problems(path) == [], f"run: python -m console.runbooks.sources notebooks/{path.name}"


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_parameters_first_with_a_dry_run(path: Path) -> None:
    book = load_runbook(path.stem)  # the declarations load: types, constraints, defaults within them
    assert NAME.match(book.name)
    assert book.title, "a `# ` title"
    assert book.summary, "a paragraph saying what it does"
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"], "the first code cell is the parameters cell"
    dry_run = book.parameter("dry_run")
    assert dry_run is not None
    assert dry_run.type == "bool"
    for parameter in book.parameters:
        assert parameter.help, f"{parameter.name} says what it is"


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_cells_are_named_thin_and_end_with_the_verdict(path: Path) -> None:
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"][1:]
    for cell in code:
        assert cell.source.startswith("# "), f"cell without a `# name` first line:\n{cell.source}"
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, FORBIDDEN), f"logic belongs in a module, not a cell:\n{cell.source}"
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").startswith("console."), f"import {node.module}: call the console's library"
            assert not isinstance(node, ast.Import), "import from the console's library only"
    assert code[-1].source.splitlines()[-1] == "verdict.finish()", "the last cell states pass or fail"


def test_every_runbook_has_its_readme_paragraph() -> None:
    readme = (NOTEBOOKS_DIR / "README.md").read_text()
    for path in RUNBOOKS:
        section = re.search(rf"^### `{path.stem}`\n\n(.+?)(?=^### |\Z)", readme, re.MULTILINE | re.DOTALL)
        assert section, f"notebooks/README.md has no `### `{path.stem}`` section"
        text = section.group(1)
        for parameter in load_runbook(path.stem).parameters:
            assert f"`{parameter.name}`" in text, f"{path.stem}: the README does not describe {parameter.name}"
        assert "Passes when" in text, f"{path.stem}: the README says what pass means"


def test_the_strip_tool_puts_an_executed_notebook_back_in_the_committed_form(tmp_path: Path) -> None:
    source = RUNBOOKS[0]
    notebook = nbformat.read(source, as_version=4)
    code = next(c for c in notebook.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    code.execution_count = 3
    notebook.metadata["widgets"] = {"state": {}}
    dirty = tmp_path / source.name
    nbformat.write(notebook, dirty)
    assert sources.main(["--check", str(dirty)]) == 1
    assert sources.main([str(dirty)]) == 0
    assert sources.problems(dirty) == []
    assert dirty.read_text() == source.read_text()


def test_runs_are_kept_out_of_git() -> None:
    assert "runs/" in (NOTEBOOKS_DIR / ".gitignore").read_text().split()
