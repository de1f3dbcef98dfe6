"""Runbooks: the notebooks in notebooks/ with their parameters and last result → a form for one runbook's
parameters → a run with live progress cell by cell (console/tui/screens/runbook_run.py) → its result and the
executed notebook's outputs. `v` reads the last run's result without running anything.

Everything goes through the runbook library (console/tui/runbook_actions.py): the catalogue and last results
are read in a worker, the form's values are checked by `resolve` (what `todo-console runbook run` checks) before
anything starts. A run acts on the system (even a dry run talks to it with the operator's credentials, and
whether `dry_run` changes nothing is up to each notebook), so under --readonly running is hidden and refused.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Static

from console.sandbox.layout import REPO_ROOT
from console.tui import render, runbook_actions
from console.tui.runbook_actions import Catalog, RunbookRow
from console.tui.screens.base import DashboardScreen
from console.tui.screens.confirm import ConfirmScreen
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.parameter_form import ParameterForm, as_text

if TYPE_CHECKING:  # the runbook library itself is loaded with the catalogue, in its worker (runbook_actions)
    from console.runbooks.model import Runbook, RunResult

PARAMETERS_WIDTH = 50  # the list's columns, to fit 160 columns; the details below say everything
WHAT_WIDTH = 44


def started_epoch(result: RunResult) -> float | None:
    try:
        return datetime.fromisoformat(result.started_at).timestamp()
    except ValueError:
        return None


def shown_path(path: str | None) -> str:
    """A path inside the checkout as `notebooks/runs/...`; others as they are."""
    if not path:
        return "-"
    try:
        return str(Path(path).relative_to(REPO_ROOT))
    except ValueError:
        return path


def last_run(result: RunResult | None, now: float, *, cell_names: bool = True) -> Text:
    """`passed 2h10m ago` / `failed 4m ago at cell 4/9 "..."` / `never run`, in the state's colour; the
    list's column leaves the cell's name to the details below (`cell_names=False`)."""
    if result is None:
        return Text("never run", style=render.STYLES["muted"])
    text = render.state(result.status)
    text.append(f" {render.ago(started_epoch(result), now)}")
    if result.failure is not None:
        cell = result.failure.cell or "start-up"
        text.append(f" at {cell if cell_names else ' '.join(cell.split(' ')[:2])}")  # `at cell 5/8`
    return text


def short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def clipped(words: list[str], width: int) -> str:
    """As many of `words` as fit in `width`, comma-separated, then how many more: `a, b, c +4 more`."""
    shown: list[str] = []
    for n, word in enumerate(words):
        rest = len(words) - n - 1
        candidate = ", ".join([*shown, word]) + (f" +{rest} more" if rest else "")
        if len(candidate) > width and shown:
            return ", ".join(shown) + f" +{len(words) - n} more"
        shown.append(word)
    return ", ".join(shown)


def details_text(row: RunbookRow, runs: Path, now: float) -> Text:
    """The highlighted runbook: what it does, every parameter, how its last run ended."""
    book, last = row.runbook, row.last
    text = Text()
    text.append(f"{book.title}\n", style="bold")
    if book.summary:
        text.append(f"{book.summary}\n")
    text.append(f"{shown_path(str(book.path))}\n\n", style="dim")
    width = max([len(p.name) for p in book.parameters] + [9])
    for p in book.parameters:
        text.append(f"{p.name:<{width}}  ", style="bold")
        default = as_text(p.default) or '""'
        text.append(f"{p.type:<5} = {default:<12} ")
        text.append(f"{p.constraint + ' ' if p.constraint else ''}{p.help}\n", style="dim")
    text.append("\nlast run  ", style="bold")
    text.append_text(last_run(last, now))
    if last is None:
        text.append(f" (no result in {shown_path(str(runs))})", style="dim")
    else:
        stamp = last.started_at[:19].replace("T", " ")
        text.append(f"  ({stamp} UTC, {render.duration(last.seconds)})\n")
        if last.failure is not None:
            text.append(f"          {last.failure.reason}\n", style=render.STYLES["bad"])
        text.append(f"          {shown_path(last.notebook)}\n", style="dim")
    return text


class RunbooksScreen(DashboardScreen):
    """Every runbook, its parameters and its last result; `enter` the form to run one, `v` its last result."""

    TITLE = "Runbooks"
    ROWS = "#runbooks"
    MUTATIONS = frozenset({"open"})  # enter opens the form that runs a runbook
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Run (parameters first)"),
        Binding("v", "view", "Last result"),
        Binding("ctrl+r", "reload", "Read again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.catalog: Catalog | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="runbooks-panel", classes="panel") as panel:
            panel.border_title = "Runbooks (enter: run · v: last result)"
            yield Static(Text("reading the notebooks...", style="dim"), id="loading")
            yield LiveTable("RUNBOOK", "LAST RUN", "PARAMETERS", "WHAT", id="runbooks")
        with VerticalScroll(id="runbook-panel", classes="panel") as panel:
            panel.border_title = "Runbook"
            yield Static(id="runbook")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_reload()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.catalog is not None:  # back from a run: its result is the newest
            self.action_reload()

    def action_reload(self) -> None:
        self.run_io("read the runbooks", runbook_actions.catalog, self.show_catalog)

    def show_catalog(self, catalog: Catalog) -> None:
        self.catalog = catalog
        folders = sorted({shown_path(str(row.runbook.path.parent)) for row in catalog.rows})
        self.query_one("#loading", Static).update(Text(f"{len(catalog.rows)} runbooks in {', '.join(folders)}",
                                                       style="dim"))
        self.draw()

    def rows(self) -> dict[str, RunbookRow]:
        return {row.runbook.name: row for row in self.catalog.rows} if self.catalog else {}

    def draw(self) -> None:
        now = self.now
        table = self.table("#runbooks")
        table.show([(name, (name, last_run(row.last, now, cell_names=False),
                            clipped([p.name for p in row.runbook.parameters], PARAMETERS_WIDTH),
                            short(row.runbook.title, WHAT_WIDTH)))
                    for name, row in self.rows().items()])
        self._details(table.selected_key)

    def _details(self, name: str | None) -> None:
        row = self.rows().get(name or "")
        self.query_one("#runbook", Static).update(
            details_text(row, self.catalog.runs, self.now) if row and self.catalog else "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._details(event.row_key.value)

    def selected(self) -> RunbookRow | None:
        return self.rows().get(self.query_one("#runbooks", LiveTable).selected_key or "")

    def open_row(self, key: str) -> None:
        row = self.rows().get(key)
        if row is None or self.dashboard.refuse_if_readonly(f"run {key}"):
            return
        self.app.push_screen(RunbookFormScreen(row.runbook, runbook_actions.starting_values(
            row.runbook, self.hub.target)))

    def action_view(self) -> None:
        from console.tui.screens.runbook_run import ResultScreen

        row = self.selected()
        if row is None:
            return
        if row.last is None:
            where = shown_path(str(self.catalog.runs)) if self.catalog else "the runs folder"
            self.app.notify(f"{row.runbook.name} has never run (no result in {where})")
            return
        self.app.push_screen(ResultScreen(row.last))


class RunbookFormScreen(DashboardScreen):
    """One runbook's parameters as a form; `ctrl+r` checks every value (as `runbook run -p` does), names the
    refused one on screen, or asks to run with the checked values."""

    TITLE = "Runbooks"
    MUTATIONS = frozenset({"run"})
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+r", "run", "Run")]

    def __init__(self, runbook: Runbook, values: dict[str, Any]) -> None:
        super().__init__()
        self.runbook = runbook
        self.start = values

    def crumbs(self) -> str:
        return f"Runbooks > {self.runbook.name} > parameters"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="form-panel", classes="panel") as panel:
            panel.border_title = f"{self.runbook.title} (ctrl+r: run · enter: next field · esc: back)"
            yield Static(Text(self.runbook.summary), id="summary")
            yield ParameterForm(self.runbook.parameters, self.start, id="form")
            yield Static(id="problem")
            yield Button("Run (ctrl+r)", id="run", variant="warning")

    def on_mount(self) -> None:
        super().on_mount()
        if self.runbook.parameters:
            self.query_one(ParameterForm).focus_field(self.runbook.parameters[0].name)
        else:
            self.query_one("#run", Button).focus()

    def checked(self) -> dict[str, Any] | None:
        """The form's values as the runbook takes them, or None with the refused parameter marked and named."""
        from console.runbooks.model import ParameterError
        from console.runbooks.parameters import resolve

        form = self.query_one(ParameterForm)
        try:
            values = resolve(self.runbook, form.values())
        except ParameterError as exc:
            form.refuse(exc.name, exc.problem)
            form.focus_field(exc.name)
            self.query_one("#problem", Static).update(Text(f"{self.runbook.name}: {exc}", style=render.STYLES["bad"]))
            return None
        self.query_one("#problem", Static).update("")
        return values

    def on_parameter_form_edited(self, message: ParameterForm.Edited) -> None:
        """Each change is checked at once, by the same code: a refusal shows while the operator types."""
        from console.runbooks.model import ParameterError
        from console.runbooks.parameters import resolve

        form = self.query_one(ParameterForm)
        try:
            resolve(self.runbook, {message.name: form.values()[message.name]})
        except ParameterError as exc:
            form.refuse(message.name, exc.problem)
            return
        form.accept(message.name)
        if not form.refused():
            self.query_one("#problem", Static).update("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_run()

    def action_run(self) -> None:
        if self.dashboard.refuse_if_readonly(f"run {self.runbook.name}"):
            return
        values = self.checked()
        if values is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                from console.tui.screens.runbook_run import RunScreen

                self.app.push_screen(RunScreen(self.runbook, values))
        self.app.push_screen(ConfirmScreen(f"Run {self.runbook.name}?", run_plan(self.runbook, values)), answered)


def run_plan(runbook: Runbook, values: dict[str, Any]) -> str:
    """What the confirmation shows: every value (changed ones marked) and whether this run may change things."""
    width = max(len(p.name) for p in runbook.parameters) if runbook.parameters else 0
    lines = [f"{'*' if values[p.name] != p.default else ' '} {p.name:<{width}}  {as_text(values[p.name])}"
             for p in runbook.parameters]
    lines.append("(* changed from the default)")
    dry_run = runbook.parameter("dry_run")
    if dry_run is None:
        lines.append("This runbook has no dry_run: it acts on the system.")
    elif values["dry_run"]:
        lines.append(f"dry_run is on: {dry_run.help}")
    else:
        lines.append("dry_run is OFF: this run acts on the system.")
    return "\n".join(lines)
