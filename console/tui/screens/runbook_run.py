"""A runbook running, cell by cell, then its result; and a past run's result read back.

The run happens in a thread worker (`run_runbook`, which blocks until the notebook ends): its progress and
what the cells print come back as messages, so keys keep answering while a cell runs for minutes. `c` stops
the run as Jupyter's stop button does (the running cell gets KeyboardInterrupt and its `finally` blocks run: a
frozen broker is thawed; no later cell starts); leaving the dashboard stops it the same way.

The result reads as `runbook run` prints it: pass or fail first, with the failing cell and its error; then the
checks, the figures, the files, and every code cell's outputs as text (a plot is in the HTML rendering).
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Log, Static
from textual.worker import Worker, WorkerState

from console.tui import render, runbook_actions
from console.tui.actions import ActionError
from console.tui.messages import RunEnded, RunPrinted, RunProgressed
from console.tui.screens.base import DashboardScreen
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.runbooks import shown_path
from console.tui.widgets.live_table import LiveTable

if TYPE_CHECKING:
    from console.runbooks.kernel import Cancellation
    from console.runbooks.model import CellProgress, Runbook, RunResult
    from console.runbooks.records import CellView

TICK_S = 0.5  # how often the running cell's elapsed time is redrawn


def headline(result: RunResult) -> Text:
    """The first thing read: PASSED, or FAILED at the cell with the reason, and where the run stopped."""
    text = Text()  # no base style: it would colour everything appended after the headline
    if result.failure is None:
        text.append(f"PASSED: {result.runbook}, {len(result.checks)} checks in {render.duration(result.seconds)}",
                    style=render.STYLES["good"] + " bold")
        return text
    failure = result.failure
    text.append(f"FAILED at {failure.cell or 'start-up (no cell ran)'}\n", style=render.STYLES["bad"])
    text.append(f"{failure.reason}\n", style="bold")
    if failure.stopped_at:
        text.append(f"(the run stopped at {failure.stopped_at})\n", style="dim")
    return text


def report_text(result: RunResult, outputs: tuple[CellView, ...]) -> Text:
    """The whole result: the headline, checks, figures, files, then each code cell with its outputs."""
    text = headline(result)
    text.append("\n")
    stamp = result.started_at[:19].replace("T", " ")
    given = ", ".join(f"{k}={v!r}" for k, v in result.parameters.items())
    text.append(f"{result.runbook} · started {stamp} UTC · {render.duration(result.seconds)} · {given}\n\n",
                style="dim")
    if result.checks:
        text.append("checks\n", style="bold")
        for check in result.checks:
            text.append("  PASS  " if check.ok else "  FAIL  ", style=render.STYLES["good" if check.ok else "bad"])
            text.append(f"{check.name}" + (f": {check.detail}" if check.detail else "") + "\n")
    if result.figures:
        text.append("figures\n", style="bold")
        width = max(len(f.name) for f in result.figures)
        for figure in result.figures:
            value = "-" if figure.value is None else f"{figure.value}{' ' + figure.unit if figure.unit else ''}"
            text.append(f"  {figure.name:<{width}}  {value}\n")
    text.append("files\n", style="bold")
    for kind, path in (("notebook", result.notebook), ("html", result.html), ("result", result.result)):
        text.append(f"  {kind:<9}{shown_path(path)}\n")
    text.append("\noutputs\n", style="bold")
    text.append_text(outputs_text(result, outputs))
    return text


def outputs_text(result: RunResult, outputs: tuple[CellView, ...]) -> Text:
    """Each code cell's header (state, time) and its outputs as text; a plot points at the HTML."""
    if not outputs:
        why = "no cell ran" if not result.cells else "moved or deleted since"
        return Text(f"no executed notebook at {shown_path(result.notebook)} ({why})\n", style="dim")
    states = {c.index: c for c in result.cells}
    failed = result.failure.cell if result.failure else None
    text = Text()
    for view in outputs:
        record = states.get(view.cell.index)
        state = record.state if record else "-"
        seconds = f" {record.seconds:.1f}s" if record and record.seconds is not None else ""
        marker = "  ◀ the run failed here" if view.cell.label() == failed else ""
        text.append(f"── {view.cell.label()} ", style="bold")
        text.append_text(render.state(state))
        text.append(f"{seconds}{marker}\n", style=render.STYLES["bad"] if marker else "")
        for output in view.outputs:
            if output.kind == "image":
                text.append(f"   plot: see the HTML at {shown_path(result.html)}\n", style="italic")
            else:
                body = output.text.rstrip("\n")
                if body:  # what a cell printed may carry terminal colours (a logger's): keep them, not the codes
                    indented = Text.from_ansi("".join(f"   {line}\n" for line in body.splitlines()))
                    if output.kind == "error":
                        indented.stylize(render.STYLES["bad"])
                    text.append_text(indented)
    return text


class ResultView(DashboardScreen):
    """What a run's result screens share: the report panel, filled once the outputs have been read."""

    TITLE = "Runbooks"

    def report(self) -> ComposeResult:
        with VerticalScroll(id="report-panel", classes="panel") as panel:
            panel.border_title = "Result and outputs"
            yield Static(id="report")

    def read_outputs(self, result: RunResult) -> None:
        self.query_one("#report", Static).update(Text.assemble(headline(result), ("\nreading the outputs...",
                                                                                  "dim")))
        self.run_io(f"read {shown_path(result.notebook)}", lambda: tuple(runbook_actions.outputs(result)),
                    lambda found: self.show_report(result, found))

    def show_report(self, result: RunResult, outputs: tuple[CellView, ...]) -> None:
        self.query_one("#report", Static).update(report_text(result, outputs))


class ResultScreen(ResultView):
    """A past run's result (the list's `v`): the JSON result and the executed notebook read back."""

    def __init__(self, result: RunResult) -> None:
        super().__init__()
        self.result = result

    def crumbs(self) -> str:
        return f"Runbooks > {self.result.runbook} > run of {self.result.started_at[:19].replace('T', ' ')} UTC"

    def compose_body(self) -> ComposeResult:
        yield from self.report()

    def on_mount(self) -> None:
        super().on_mount()
        self.read_outputs(self.result)


class RunScreen(ResultView):
    """A run of one runbook: cell n of N, its name and elapsed time, the cells so far, what they print; then
    the result. `c` cancels while it runs; `esc` leaves once it has ended."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("c", "cancel", "Cancel the run")]

    def __init__(self, runbook: Runbook, values: dict[str, Any]) -> None:
        super().__init__()
        self.runbook = runbook
        self.values = values
        self.cells: dict[int, CellProgress] = {}
        self.current: CellProgress | None = None
        self.result: RunResult | None = None
        self.problem: str | None = None
        self.stop: Cancellation | None = None
        self.began = 0.0
        self.cell_began = 0.0
        self._ticker: Timer | None = None

    @property
    def running(self) -> bool:
        return self.result is None and self.problem is None

    def crumbs(self) -> str:
        return f"Runbooks > {self.runbook.name} > " + ("running" if self.running else "run")

    def compose_body(self) -> ComposeResult:
        with Vertical(id="progress-panel", classes="panel") as panel:
            panel.border_title = f"{self.runbook.title}"
            yield Static(id="progress")
            yield LiveTable("CELL", "NAME", "STATE", "TIME", "ERROR", id="cells")
        with Vertical(id="printed-panel", classes="panel") as panel:
            panel.border_title = "What the cells print"
            yield Log(id="printed", highlight=False)
        yield from self.report()

    def on_mount(self) -> None:
        self.stop = runbook_actions.cancellation()
        self.began = self.cell_began = time.monotonic()
        super().on_mount()
        self.query_one("#report-panel").add_class("-hidden")
        self._ticker = self.set_interval(TICK_S, self._tick)
        self.run_worker(partial(self._run, self.stop), name=f"run {self.runbook.name}", group="runbook",
                        thread=True, exit_on_error=False)
        self.query_one("#cells", LiveTable).focus()

    def _run(self, stop: Cancellation) -> None:
        """In the worker thread: the run to its end, then its outputs; messages carry both back."""
        try:
            result = runbook_actions.run(self.runbook, self.values, progress=self._progressed,
                                         output=self._printed, stop=stop)
            outputs = runbook_actions.outputs(result)
        except ActionError as exc:
            self.post_message(RunEnded(None, problem=str(exc)))
            return
        self.post_message(RunEnded(result, outputs))

    def _progressed(self, event: CellProgress) -> None:
        self.post_message(RunProgressed(event))

    def _printed(self, text: str) -> None:
        self.post_message(RunPrinted(text))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A run that broke the worker itself (a bug, not a failed cell) still ends on screen, with why."""
        if event.worker.group == "runbook" and event.state == WorkerState.ERROR and self.running:
            self.post_message(RunEnded(None, problem=f"the run broke: {event.worker.error!r}"))

    def on_run_progressed(self, message: RunProgressed) -> None:
        event = message.event
        self.cells[event.cell.index] = event
        if event.state == "running":
            self.current = event
            self.cell_began = time.monotonic()
        self.draw()

    def on_run_printed(self, message: RunPrinted) -> None:
        self.query_one("#printed", Log).write(message.text)

    def on_run_ended(self, message: RunEnded) -> None:
        self.result, self.problem = message.result, message.problem
        if self._ticker is not None:
            self._ticker.stop()
        self.refresh_bindings()  # `c` goes
        self.add_class("-ended")  # the cells give the room to the result
        if message.result is not None:
            self.query_one("#printed-panel").add_class("-hidden")
            self.query_one("#report-panel").remove_class("-hidden")
            self.query_one("#report-panel").focus()  # the arrow keys and page keys scroll the outputs
            self.show_report(message.result, message.outputs)
        else:
            self.app.notify(f"{self.runbook.name}: {message.problem}", severity="error", timeout=10)
        self.redraw()

    def _tick(self) -> None:
        if self.running:
            self.query_one("#progress", Static).update(self.progress_text())

    def progress_text(self) -> Text:
        """`cell 3 of 8 "plan: ..." · 2.1s in this cell · 7.4s in all`, or how the run ended."""
        if self.result is not None:
            return headline(self.result)
        if self.problem is not None:
            return Text(f"did not run: {self.problem}", style=render.STYLES["bad"])
        now = time.monotonic()
        cancelling = "cancelling: " if self.stop is not None and self.stop.requested else ""
        if self.current is None:
            return Text(f"{cancelling}starting the kernel... {now - self.began:.1f}s", style="yellow")
        cell = self.current.cell
        text = Text(f"{cancelling}cell {cell.index} of {cell.total} ", style="yellow bold")
        text.append(f'"{cell.name}"', style="bold")
        text.append(f" · {now - self.cell_began:.1f}s in this cell · {now - self.began:.1f}s in all")
        return text

    def draw(self) -> None:
        self.query_one("#progress", Static).update(self.progress_text())
        table = self.table("#cells")
        table.show([
            (str(index), (f"{e.cell.index}/{e.cell.total}", e.cell.name, render.state(e.state),
                          f"{e.seconds:.1f}s" if e.seconds is not None else "", e.error))
            for index, e in sorted(self.cells.items())])
        # A cell that grows in place (an ERROR filled in) widens its column on the DataTable's next idle, which
        # repaints nothing by itself: the row stays drawn clipped to the old width until something else moves.
        self.call_after_refresh(table.refresh)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running
        return super().check_action(action, parameters)

    def action_cancel(self) -> None:
        if not self.running or self.stop is None:
            return

        def answered(yes: bool | None) -> None:
            if yes and self.stop is not None and self.running:
                self.stop.cancel()
                self.draw()
        self.app.push_screen(ConfirmScreen(
            f"Cancel {self.runbook.name}?",
            "The running cell is interrupted as Jupyter's stop button does it (its `finally` blocks run), no later "
            "cell starts, and the run is recorded as failed: cancelled by the operator."), answered)

    def action_back(self) -> None:
        if self.running and not self.filter_text and self.query_one("#filter").has_class("-hidden"):
            self.app.notify(f"{self.runbook.name} is running: c cancels it; esc leaves once it has ended",
                            severity="warning")
            return
        super().action_back()

    def on_unmount(self) -> None:
        """The dashboard is closing under a run: stop it the same way, so no kernel is left behind."""
        if self.running and self.stop is not None:
            self.stop.cancel()
