"""The 3 a.m. screen: each service's replicas, restarts and version; alerts firing; Kafka, Dapr, KEDA and
certificate health; dead letters; the worst lag; and every finding, worst first. `enter` on a finding opens
the screen its `view` names: anything wrong is one key away from its detail."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from console.live.overview import Overview
from console.model.findings import Finding
from console.tui import render
from console.tui.screens.base import DashboardScreen
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.source_state import SourceState

# Where a finding's `view` (console/live/findings.py) is shown on the dashboard.
VIEW_SCREENS = {"rollouts": "rollouts", "pods": "pods", "platform": "platform", "lag": "lag",
                "dead-letters": "dead-letters", "events": "events", "alerts": "overview", "sources": "overview"}


class OverviewScreen(DashboardScreen):
    TITLE = "Overview"
    AREAS = ("workloads", "lag", "dead_letters", "alerts", "events", "logs")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Open the detail")]

    def __init__(self) -> None:
        super().__init__()
        self.findings: dict[str, Finding] = {}

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="top"):
            with Vertical(id="services-panel", classes="panel") as services:
                services.border_title = "Services"
                yield SourceState(id="services-state")
                yield LiveTable("SERVICE", "STATE", "READY", "AVAILABLE", "RESTARTS", "VERSION", id="services")
            with Vertical(id="side"):
                with Vertical(id="platform-panel", classes="panel") as platform:
                    platform.border_title = "Platform"
                    yield Static(id="platform")
                with Vertical(id="alerts-panel", classes="panel") as alerts:
                    alerts.border_title = "Alerts"
                    yield SourceState(id="alerts-state")
                    yield LiveTable("ALERT", "STATE", "SEVERITY", "SINCE", "SUMMARY", id="alerts")
        with Horizontal(id="middle"):
            with Vertical(id="dlq-panel", classes="panel") as dlq:
                dlq.border_title = "Dead letters"
                yield SourceState(id="dlq-state")
                yield Static(id="dlq")
            with Vertical(id="lag-panel", classes="panel") as lag:
                lag.border_title = "Worst lag"
                yield SourceState(id="lag-state")
                yield Static(id="lag")
        with Vertical(id="findings-panel", classes="panel") as findings:
            findings.border_title = "Findings (enter: open the detail)"
            yield LiveTable("SEVERITY", "SUBJECT", "SINCE", "WHAT", id="findings")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#findings", LiveTable).focus()

    def draw(self) -> None:
        snapshot = self.hub.snapshot()
        now = self.now
        o = self.hub.overview(now)
        self._services(o, snapshot.workloads)
        self._platform(o)
        self._alerts(o, snapshot.alerts)
        self._dead_letters(o, snapshot.dead_letters)
        self._lag(o, snapshot.lag)
        self.findings = {str(i): f for i, f in enumerate(o.findings)}
        self.table("#findings").show([
            (key, (render.severity(f.severity), f"{f.area}/{f.subject}", render.ago(f.since, now), f.message))
            for key, f in self.findings.items()])

    def _services(self, o: Overview, view: object) -> None:
        self.show_state("#services-state", self.hub.view("workloads"))
        rows = [(s.name, (s.name, render.state(s.state, problem=s.problem), f"{s.ready}/{s.desired}", s.available,
                          Text(str(s.restarts), style="yellow" if s.restarts else ""), s.version))
                for s in o.services or ()]
        self.table("#services").show(rows)

    def _platform(self, o: Overview) -> None:
        if o.platform is None:
            waiting = self.hub.view("workloads").state == "unknown"
            self.put("#platform", Text(
                "waiting for the first answer" if waiting else "unknown: the workloads could not be read", "dim"))
            return
        lines = Text()
        for line in o.platform:
            mark = ("●", "green") if line.ok else ("●", "bold red") if line.ok is False else ("?", "yellow")
            lines.append_text(Text.assemble(mark, f" {line.area:<13} ", line.summary, "\n"))
        self.put("#platform", lines if o.platform else Text("no platform resources", "dim"))

    def _alerts(self, o: Overview, view: object) -> None:
        self.show_state("#alerts-state", self.hub.view("alerts"))
        report = o.alerts
        rows = []
        if report is not None:
            for a in (*report.firing, *report.pending):
                rows.append((f"{a.name}-{a.active_at}-{sorted(a.labels.items())}",
                             (a.name, render.state(a.state), a.severity, render.ago(a.active_at, o.at), a.summary)))
        self.table("#alerts").show(rows)

    def _dead_letters(self, o: Overview, view: object) -> None:
        self.show_state("#dlq-state", self.hub.view("dead_letters"))
        d = o.dead_letters
        if d is None:
            text = Text("unknown: Kafka could not be read", style="dim")
        elif not d.waiting:
            text = Text.assemble(("none waiting", "green"), f" ({d.pending} pending in {d.dlqs} DLQs)")
        else:
            text = Text.assemble((f"{d.waiting} waiting", "bold yellow"),
                                 f" for {render.age(o.at - d.oldest_waiting_at) if d.oldest_waiting_at else '?'}: ",
                                 ", ".join(f"{topic} {n}" for topic, n in d.waiting_by_dlq), " (key 3)")
        self.put("#dlq", text)

    def _lag(self, o: Overview, view: object) -> None:
        self.show_state("#lag-state", self.hub.view("lag"))
        line = o.lag
        if line is None:
            text = Text("unknown: Kafka could not be read", style="dim")
        elif line.group is None:
            text = Text.assemble(("every group caught up", "green"),
                                 f" ({line.groups} groups, {line.samples} samples)")
        else:
            eta = render.duration(line.eta_s) if line.eta_s is not None else (line.eta_reason or "no ETA")
            text = Text.assemble((line.group, "bold"), " ", render.state(line.status), f" · {line.lag} messages",
                                 f" · {render.age(line.time_lag_s)} behind ({line.time_lag_from or '-'})",
                                 f" · ETA {eta}", f"\nKEDA: {line.keda}" if line.keda else "",
                                 f"\n{line.groups} groups: {line.err} ERR, {line.warn} WARN (key 2)")
        self.put("#lag", text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.data_table, event.row_key.value)

    def action_open(self) -> None:
        table = self.focused if isinstance(self.focused, LiveTable) else self.query_one("#findings", LiveTable)
        self._open(table, table.selected_key)

    def _open(self, table: DataTable[Any], key: str | None) -> None:
        if table.id == "findings" and key in self.findings:
            finding = self.findings[key]
            self.dashboard.goto(VIEW_SCREENS.get(finding.view or "", "overview"))
        elif table.id == "services":
            self.dashboard.goto("rollouts")
