"""What the Runbooks screen asks of the runbook library (console.runbooks): the catalogue with each runbook's
last result, a form's starting values, a run, and an executed notebook's outputs.

The screen never re-implements the library: parameters are checked by `console.runbooks.resolve` (what
`runbook run -p` uses), runs are `run_runbook` with its progress, output and cancellation hooks. Each call here
that reads files or runs a notebook blocks, so the screen calls it from a thread worker; failures come back as
`ActionError` (one line for the operator), as from console.tui.actions.

The library (and its machinery: papermill, nbclient, jupyter_client) is imported on first use, in the worker
that reads the catalogue, not when the dashboard starts: most sessions never open this screen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.target import SandboxTarget, Target
from console.tui.actions import ActionError

if TYPE_CHECKING:
    from console.runbooks.kernel import Cancellation
    from console.runbooks.model import CellProgress, Runbook, RunResult
    from console.runbooks.records import CellView


@dataclass(frozen=True)
class RunbookRow:
    """A runbook as the list shows it: what it declares, and how its newest run in the runs folder ended."""

    runbook: Runbook
    last: RunResult | None


@dataclass(frozen=True)
class Catalog:
    runs: Path  # where the results are read from and new runs are written
    rows: tuple[RunbookRow, ...]


def catalog() -> Catalog:
    """Every runbook in notebooks/ ($TODO_RUNBOOKS_DIR) with its last result in the runs folder."""
    from console.runbooks.catalog import list_runbooks
    from console.runbooks.model import RunbookError
    from console.runbooks.records import last_result
    from console.runbooks.runner import runs_dir

    runs = runs_dir()
    try:
        books = list_runbooks()
    except RunbookError as exc:
        raise ActionError(str(exc)) from exc
    return Catalog(runs, tuple(RunbookRow(book, last_result(runs, book.name)) for book in books))


def starting_values(runbook: Runbook, target: Target) -> dict[str, Any]:
    """The form's first values: the declared defaults, except that a runbook that asks which system to act on
    is pointed at the one the dashboard shows (`target`, `sandbox_dir`; `context`, `kubeconfig`, `namespace`).
    Without this a dashboard on `--sandbox /tmp/x` would run its runbooks against the default sandbox."""
    if isinstance(target, SandboxTarget):
        wanted: dict[str, str] = {"target": "sandbox", "sandbox_dir": str(target.root)}
    else:
        wanted = {"target": "cluster", "context": target.context or "",
                  "kubeconfig": str(target.kubeconfig or ""), "namespace": target.namespace}
    values = {p.name: p.default for p in runbook.parameters}
    for parameter in runbook.parameters:
        value = wanted.get(parameter.name)
        if value is not None and parameter.type == "str" and (parameter.choices is None or value in parameter.choices):
            values[parameter.name] = value
    return values


def cancellation() -> Cancellation:
    """A handle that stops a run from the App's thread: the running cell is interrupted, no later one starts."""
    from console.runbooks.kernel import Cancellation

    return Cancellation()


def run(runbook: Runbook, values: Mapping[str, Any], *, progress: Callable[[CellProgress], None],
        output: Callable[[str], None], stop: Cancellation) -> RunResult:
    """One run to its end (passed, failed or cancelled), recorded in the runs folder as `runbook run` does."""
    from console.runbooks.model import RunbookError
    from console.runbooks.runner import run_runbook

    try:
        return run_runbook(runbook, values, progress=progress, output=output, cancellation=stop)
    except RunbookError as exc:  # refused before anything ran (the notebook changed since the form was filled)
        raise ActionError(str(exc)) from exc


def outputs(result: RunResult) -> list[CellView]:
    """The executed notebook's code cells with their outputs as text; none when the kernel never started."""
    from console.runbooks.model import RunbookError
    from console.runbooks.records import cell_outputs

    notebook = Path(result.notebook)
    if not notebook.exists():
        return []
    try:
        return cell_outputs(notebook)
    except RunbookError as exc:
        raise ActionError(str(exc)) from exc
