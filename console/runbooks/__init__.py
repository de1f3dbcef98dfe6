"""Runbooks: the notebooks in notebooks/, executed by papermill with checked parameters, leaving a record.

The API the CLI (`todo-console runbook`) and the dashboard's Runbooks screen share:

    list_runbooks() -> list[Runbook]                       # name, title, summary, parameters (with constraints)
    load_runbook(name) -> Runbook                          # RunbookError when unknown or badly declared
    resolve(runbook, values) -> dict                       # the checked values; ParameterError names the parameter
    run_runbook(runbook | name, values, *, out_dir=None, progress=None, output=None,
                cell_timeout_s=None, cancellation=None) -> RunResult
        progress(CellProgress(cell: CellRef(index, total, name), state, seconds, error)) per cell start and end
        output(text) with what the cells print; Cancellation().cancel() from any thread stops the run
    runs_dir() -> Path                                     # $TODO_RUNBOOK_RUNS_DIR or notebooks/runs
    last_result(runs_dir, name) / list_results(runs_dir, name=None) / read_result(path) -> RunResult
    cell_outputs(notebook_path) -> list[CellView]          # each cell's outputs as text, to read a run

Each module has one job: model (the dataclasses), parameters (the declaration convention), catalog (finding
runbooks), kernel (which interpreter runs them, and cancelling), runner (a run and its record), records
(reading executed notebooks and results back), kit (what cells use to state checks and figures), sources (the
committed form of a notebook), procedures/ (what the runbooks do, as tested functions).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as type checkers and editors see them
    from console.runbooks.catalog import list_runbooks, load_runbook
    from console.runbooks.kernel import Cancellation
    from console.runbooks.model import (
        CellProgress,
        CellRef,
        Check,
        Failure,
        Figure,
        Parameter,
        ParameterError,
        Runbook,
        RunbookError,
        RunResult,
    )
    from console.runbooks.parameters import resolve
    from console.runbooks.records import CellView, cell_outputs, last_result, list_results, read_result
    from console.runbooks.runner import run_runbook, runs_dir

# Where each public name lives. Loaded on first use (PEP 562): a runbook's kernel imports `console.runbooks.kit`
# and its procedures, which must not pull in papermill, nbconvert and jupyter_client's kernel manager with this
# package, the runner's own machinery (about a second of every run's kernel start on a loaded machine).
_EXPORTS = {
    "list_runbooks": "catalog", "load_runbook": "catalog", "Cancellation": "kernel",
    "CellProgress": "model", "CellRef": "model", "Check": "model", "Failure": "model", "Figure": "model",
    "Parameter": "model", "ParameterError": "model", "Runbook": "model", "RunbookError": "model",
    "RunResult": "model", "resolve": "parameters", "CellView": "records", "cell_outputs": "records",
    "last_result": "records", "list_results": "records", "read_result": "records", "run_runbook": "runner",
    "runs_dir": "runner",
}

__all__ = [
    "Cancellation", "CellProgress", "CellRef", "CellView", "Check", "Failure", "Figure", "Parameter",
    "ParameterError", "RunResult", "Runbook", "RunbookError", "cell_outputs", "last_result", "list_results",
    "list_runbooks", "load_runbook", "read_result", "resolve", "run_runbook", "runs_dir",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
