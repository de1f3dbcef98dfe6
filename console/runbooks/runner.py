"""Run a runbook: check its parameters, execute it with papermill cell by cell, keep the record.

Netflix's pattern: the input notebook is never changed; every run writes a new executed copy, named with the
runbook and the UTC time it started, and never overwrites one. Beside it go an HTML rendering (nbconvert) and
a JSON result (pass or fail, the cell that failed and why, every check and figure the runbook recorded). The
three files are made read-only once written: a record, not a draft.

Parameters are checked before anything starts (console/runbooks/parameters.py). The kernel is this
interpreter's (console/runbooks/kernel.py). Progress reaches the caller through a callback per cell: the CLI
prints a line, the dashboard updates a list. A failed run's notebook opens with a header naming the failed
cell and the reason, and has a marker just before that cell.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.runbooks import records
from console.runbooks.catalog import load_runbook
from console.runbooks.kernel import Cancellation
from console.runbooks.model import CellProgress, CellRef, Failure, Runbook, RunResult
from console.runbooks.parameters import resolve
from console.sandbox.layout import REPO_ROOT

log = logging.getLogger(__name__)

RUNS_DIR = REPO_ROOT / "notebooks" / "runs"
ENV_RUNS_DIR = "TODO_RUNBOOK_RUNS_DIR"
HEADER_TAG = "runbook-result"  # our header and marker cells (papermill's own error cells are replaced)
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
READ_ONLY = 0o444

Progress = Callable[[CellProgress], None]
Output = Callable[[str], None]


def runs_dir() -> Path:
    return Path(os.environ.get(ENV_RUNS_DIR) or RUNS_DIR)


def run_runbook(
    runbook: Runbook | str,
    values: Mapping[str, Any] | None = None,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    output: Output | None = None,
    start_timeout_s: float = 60.0,
    cell_timeout_s: float | None = None,
    cancellation: Cancellation | None = None,
) -> RunResult:
    """Execute `runbook` with `values` (text or typed) over its defaults and return the result.

    Raises ParameterError (or RunbookError) before anything runs or is written. Otherwise always returns a
    RunResult, passed or failed, with the notebook, HTML and JSON written under `out_dir`. `progress` is
    called when each code cell starts and ends; `output` receives what the cells print, as they print it;
    `cancellation.cancel()`, from any thread, stops the run (console/runbooks/kernel.py).
    """
    book = load_runbook(runbook) if isinstance(runbook, str) else runbook
    parameters = resolve(book, values or {})
    out = out_dir or runs_dir()
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    notebook_path = _new_path(out, book.name, started)
    cancellation = cancellation or Cancellation()
    tracker = _Tracker(progress, cancellation)
    clock = time.monotonic()
    raised = _execute(book, parameters, notebook_path, tracker, output, start_timeout_s, cell_timeout_s,
                      cancellation)
    seconds = time.monotonic() - clock
    result = _finish(book, parameters, notebook_path, started, seconds, raised, cancelled=cancellation.requested)
    for path in (notebook_path, Path(result.html) if result.html else None, Path(result.result)):
        if path is not None and path.exists():
            path.chmod(READ_ONLY)
    return result


def _new_path(out: Path, name: str, started: datetime) -> Path:
    """`<name>-<UTC stamp>.ipynb`, never an existing one (two runs in one second get -2, -3...)."""
    base = f"{name}-{started.strftime('%Y%m%dT%H%M%SZ')}"
    candidate, n = out / f"{base}.ipynb", 1
    while candidate.exists() or candidate.with_suffix(".json").exists():
        n += 1
        candidate = out / f"{base}-{n}.ipynb"
    return candidate


class RunCancelled(Exception):
    """Raised in nbclient's cell hook: a cancelled run starts no further cell."""


class _Tracker:
    """nbclient's cell hooks turned into CellProgress events for the caller."""

    def __init__(self, progress: Progress | None, cancellation: Cancellation) -> None:
        self.progress = progress
        self.cancellation = cancellation
        self.total = 0
        self.seen = 0
        self.started: dict[int, tuple[CellRef, float]] = {}

    def start(self, cell: Any, cell_index: int) -> None:
        if cell.cell_type != "code" or not cell.source.strip():
            return
        if self.cancellation.requested:
            raise RunCancelled(f"cancelled before cell {self.seen + 1}/{self.total}")
        self.seen += 1
        ref = CellRef(self.seen, max(self.total, self.seen), records.cell_name(cell), cell_index)
        self.started[cell_index] = (ref, time.monotonic())
        self._emit(CellProgress(ref, "running"))

    def executed(self, cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        if cell_index not in self.started:
            return
        ref, began = self.started[cell_index]
        content = execute_reply.get("content", {})
        error = None
        if content.get("status") == "error":
            error = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}".rstrip(": ")
        else:
            error = _failed_check(cell)
        self._emit(CellProgress(ref, "failed" if error else "passed", time.monotonic() - began, error))

    def _emit(self, event: CellProgress) -> None:
        if self.progress is None:
            return
        try:
            self.progress(event)
        except Exception:  # a broken display must not break the run it displays
            log.exception("runbook progress callback failed")


def _failed_check(cell: Any) -> str | None:
    from console.runbooks.kit import CHECK_MIME

    for output in cell.get("outputs", []):
        check = output.get("data", {}).get(CHECK_MIME)
        if check and not check.get("ok"):
            return f"{check['name']}: {check.get('detail', '')}".rstrip(": ")
    return None


class _Stream:
    """A file-like object papermill writes cell output to; forwards each piece to `output`."""

    def __init__(self, output: Output) -> None:
        self.output = output

    def write(self, text: str) -> int:
        self.output(text)
        return len(text)

    def flush(self) -> None:
        pass


def _execute(book: Runbook, parameters: dict[str, Any], notebook_path: Path, tracker: _Tracker,
             output: Output | None, start_timeout_s: float, cell_timeout_s: float | None,
             cancellation: Cancellation) -> BaseException | None:
    """papermill.execute_notebook; returns what it raised (a failed cell, a dead kernel...) or None."""
    import nbformat
    import papermill

    from console.runbooks.kernel import KERNEL_NAME

    source = nbformat.read(book.path, as_version=4)
    tracker.total = len(records.code_cells(source)) + (1 if parameters else 0)  # + papermill's injected cell
    stream = _Stream(output) if output else None
    try:
        papermill.execute_notebook(
            str(book.path), str(notebook_path), parameters=parameters, kernel_name=KERNEL_NAME,
            progress_bar=False, start_timeout=start_timeout_s, execution_timeout=cell_timeout_s,
            kernel_manager_class=cancellation.manager_class(),
            # the kernel works in the notebooks' folder, as Jupyter starts it; this process's cwd is untouched
            resources={"metadata": {"path": str(book.path.parent)}},
            on_cell_start=tracker.start, on_cell_executed=tracker.executed,
            stdout_file=stream, stderr_file=stream,
        )
    except Exception as exc:  # papermill's PapermillExecutionError, or the kernel failing to start / dying
        return exc
    return None


def _finish(book: Runbook, parameters: dict[str, Any], notebook_path: Path, started: datetime, seconds: float,
            raised: BaseException | None, *, cancelled: bool = False) -> RunResult:
    """Read the executed notebook, decide pass or fail, write the header, the HTML and the JSON result."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4) if notebook_path.exists() else None
    reading = records.read_notebook(notebook) if notebook is not None else records.Reading()
    failure = _failure(reading, raised)
    if cancelled and failure is not None:
        failure = Failure(failure.cell, f"cancelled by the operator ({failure.reason})", failure.stopped_at)
    result_path = notebook_path.with_suffix(".json")
    html_path: Path | None = notebook_path.with_suffix(".html")
    if notebook is None:  # the kernel did not start: papermill wrote nothing
        html_path = None
    else:
        _annotate(notebook, reading, failure)
        nbformat.write(notebook, notebook_path)
        html_path = _render_html(notebook, html_path)  # type: ignore[arg-type]
    result = RunResult(
        runbook=book.name, status="failed" if failure else "passed", started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(), seconds=round(seconds, 2), parameters=parameters,
        notebook=str(notebook_path), html=str(html_path) if html_path else None, result=str(result_path),
        failure=failure, checks=reading.checks, figures=reading.figures, cells=reading.cells,
    )
    records.write_result(result, result_path)
    return result


def _failure(reading: records.Reading, raised: BaseException | None) -> Failure | None:
    """Why the run failed, naming the cell a person should look at; None when it passed.

    A failed check names the cell that made it (the verdict cell only stopped the run). Otherwise the cell
    that raised; otherwise (the kernel never started, or died) what papermill raised.
    """
    failed = [c for c in reading.checks if not c.ok]
    error_cell = reading.error.cell.label() if reading.error else None
    if failed:
        first = failed[0]
        reason = f"{first.name}: {first.detail}" if first.detail else first.name
        if len(failed) > 1:
            reason += f" (and {len(failed) - 1} more failed check{'s' if len(failed) > 2 else ''})"
        return Failure(first.cell, reason, error_cell if error_cell != first.cell else None)
    if reading.error is not None:
        return Failure(error_cell, reading.error.reason)
    if raised is not None:
        return Failure(None, _one_line(raised))
    if reading.verdict is None:
        return Failure(None, "the runbook stated no verdict: its last cell must call verdict.finish()")
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def _annotate(notebook: Any, reading: records.Reading, failure: Failure | None) -> None:
    """A header cell stating the outcome at the top, and a marker just before the failed cell."""
    import nbformat

    notebook.cells = [c for c in notebook.cells
                      if not {PAPERMILL_ERROR_TAG, HEADER_TAG} & set(c.get("metadata", {}).get("tags", []))]
    if failure is None:
        header = "## PASSED\n\n" + "\n".join(f"- {c.name}" + (f": {c.detail}" if c.detail else "")
                                             for c in reading.checks)
    else:
        where = failure.cell or "before any cell ran"
        header = f"## FAILED at {where}\n\n{failure.reason}"
        if failure.stopped_at:
            header += f"\n\nThe run stopped at {failure.stopped_at}."
        ref = reading.refs.get(failure.cell or "")
        if ref is not None:
            marker = nbformat.v4.new_markdown_cell(f'<a id="runbook-failed-cell"></a>**The run failed here:** '
                                                   f"{failure.reason}")
            marker.metadata["tags"] = [HEADER_TAG]
            position = next(i for i, c in enumerate(notebook.cells) if c is _cell_at(notebook, ref))
            notebook.cells.insert(position, marker)
            header += "\n\n[Go to the failed cell](#runbook-failed-cell)"
    cell = nbformat.v4.new_markdown_cell(header)
    cell.metadata["tags"] = [HEADER_TAG]
    notebook.cells.insert(0, cell)


def _cell_at(notebook: Any, ref: CellRef) -> Any:
    """The code cell `ref` names, found again after the error cells were removed."""
    return records.code_cells(notebook)[ref.index - 1][1]


_exporter: Any = None
_exporter_lock = threading.Lock()


def _render_html(notebook: Any, path: Path) -> Path | None:
    """The notebook as a standalone HTML page (plots embedded); a rendering failure loses only the HTML.

    One exporter serves every run of the process (the dashboard, a test session): it keeps its loaded
    templates and highlighter, about a third of a rendering; the lock keeps two runs from sharing it at once."""
    global _exporter
    try:
        from nbconvert import HTMLExporter

        with _exporter_lock:
            _exporter = _exporter or HTMLExporter()
            body, _ = _exporter.from_notebook_node(notebook)
    except Exception:
        log.exception("rendering the executed runbook as HTML failed", extra={"notebook": str(path)})
        return None
    path.write_text(body)
    return path
