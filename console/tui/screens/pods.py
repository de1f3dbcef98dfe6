"""Pods: kubectl's STATUS, READY and RESTARTS, the last restart, node, age and the problem; the highlighted
pod's containers, probes and recent events below; `enter` describes it (read fresh, as kubectl does)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from console.commands.pods import describe
from console.model.pods import PodSummary
from console.tui import actions, render
from console.tui.screens.base import DashboardScreen
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.source_state import SourceState


def pod_brief(p: PodSummary, now: float) -> Text:
    """Containers (state, restarts, probes) and the newest events: what the list cannot show in a row."""
    text = Text()
    for c in p.containers:
        text.append(f"{c.name:<10}", style="bold")
        text.append_text(render.state(c.state))
        text.append(f"{' (' + c.reason + ')' if c.reason else ''}  restarts {c.restarts}  ready {c.ready}")
        probes = ", ".join(f"{probe.kind} {probe.action}" for probe in c.probes)
        text.append(f"  probes: {probes or '-'}\n")
    for e in p.events[:4]:
        text.append(f"{e.type:<8}", style="yellow" if e.warning else "dim")
        text.append(f" {e.reason:<18} {render.ago(e.last_seen, now):<12} {e.message}\n")
    if not p.events:
        text.append("no recent events", style="dim")
    return text


class PodsScreen(DashboardScreen):
    TITLE = "Pods"
    AREAS = ("workloads",)
    ROWS = "#pods"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Describe the pod"),
                                             Binding("d", "open", "Describe the pod", show=False)]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="pods-panel", classes="panel") as panel:
            panel.border_title = "Pods (enter: describe)"
            yield SourceState(id="workloads-state")
            yield LiveTable("NAME", "READY", "STATUS", "RESTARTS", "LAST-RESTART", "NODE", "AGE", "PROBLEM", id="pods")
        with VerticalScroll(id="pod-panel", classes="panel") as panel:
            panel.border_title = "Containers and events"
            yield Static(id="pod")

    def pods(self) -> dict[str, PodSummary]:
        view = self.hub.view("workloads")
        return {p.name: p for p in view.value.pods} if view.value is not None else {}

    def draw(self) -> None:
        if not self.show_state("#workloads-state", self.hub.view("workloads")):
            return
        now = self.now
        rows = [(p.name, (p.name, p.ready, render.state(p.status, problem=p.problem),
                          Text(str(p.restarts), style="yellow" if p.restarts else ""),
                          render.ago(p.last_restart_at, now) if p.last_restart_at else None, p.node,
                          render.age(now - p.created_at) if p.created_at else None, p.problem_reason))
                for p in self.pods().values()]
        table = self.table("#pods")
        table.show(rows)
        self._brief(table.selected_key)

    def _brief(self, name: str | None) -> None:
        pod = self.pods().get(name or "")
        self.put("#pod", pod_brief(pod, self.now) if pod else "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._brief(event.row_key.value)

    def open_row(self, key: str) -> None:
        self.app.push_screen(DescribeScreen(key))


class DescribeScreen(DashboardScreen):
    """`kubectl describe pod`'s first screenful, read fresh when opened (ctrl+r reads it again)."""

    TITLE = "Pods"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+r", "reload", "Read again")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.pod_name = name

    def crumbs(self) -> str:
        return f"Pods > {self.pod_name} > describe"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="text-panel", classes="panel") as panel:
            panel.border_title = f"describe {self.pod_name}"
            yield Static(Text("reading...", "dim"), id="describe")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_reload()

    def action_reload(self) -> None:
        self.run_io(f"describe {self.pod_name}", lambda: actions.describe_pod(self.hub, self.pod_name),
                        lambda pod: self.query_one("#describe", Static).update(Text(describe(pod))))
