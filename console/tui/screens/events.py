"""Event rates per topic: published, consumed (per consumer) and failed (per service and stage) events per
second over the rate window, daprd's delivery counts where it exports them, the backend's outbox, and each
topic's published / consumed / failed history as sparklines."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from console.model.event_rates import EventsReport
from console.tui import render
from console.tui.screens.base import DashboardScreen
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.source_state import SourceState
from console.tui.widgets.trend import Trend

POINTS = 60


class EventsScreen(DashboardScreen):
    TITLE = "Events"
    AREAS = ("events",)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="rates-panel", classes="panel") as panel:
            panel.border_title = "Events per second, per topic"
            yield SourceState(id="events-state")
            yield LiveTable("TOPIC", "PUBLISHED/S", "CONSUMED/S", "FAILED/S", "DAPR IN/S", "PUBLISHED", "CONSUMED",
                            "FAILED", id="rates")
            yield Static(id="outbox")
        with Vertical(id="history-panel", classes="panel") as panel:
            panel.border_title = "Selected topic"
            yield Trend("published/s", render.rate, id="published-trend")
            yield Trend("consumed/s", render.rate, id="consumed-trend")
            yield Trend("failed/s", render.rate, id="failed-trend")

    def report(self) -> EventsReport | None:
        report: EventsReport | None = self.hub.view("events").value
        return report

    def draw(self) -> None:
        report = self.report()
        if not self.show_state("#events-state", self.hub.view("events")) or report is None:
            return
        rows = []
        for t in report.topics:
            history = report.history.get(t.topic)
            rows.append((t.topic, (
                t.topic, render.rate(t.published_per_s),
                render.joined(f"{r.service} {r.per_s:.2f}" for r in t.consumed) if t.consumed else "0.00",
                Text(render.joined(f"{r.service}/{r.stage} {r.per_s:.2f}" for r in t.failed), style="bold red")
                if t.failed_per_s > 0 else "0.00",
                render.joined(f"{d.app_id} {d.status} {d.per_s:.2f}" for d in t.dapr if d.direction == "in")
                if t.dapr else None,
                render.spark([v for _at, v in history.published], 20) if history else None,
                render.spark([v for _at, v in history.consumed], 20) if history else None,
                render.spark([v for _at, v in history.failed], 20) if history else None)))
        table = self.table("#rates")
        table.show(rows)
        outbox = ", ".join(f"{service} {n:.0f}" for service, n in sorted(report.outbox_pending.items()))
        self.put("#outbox",
            f"rates over the last {report.window}; outbox pending: {outbox or '-'}")
        self._history(table.selected_key)

    def _history(self, topic: str | None) -> None:
        report = self.report()
        history = report.history.get(topic or "") if report else None
        for name in ("published", "consumed", "failed"):
            points = [v for _at, v in getattr(history, name)][-POINTS:] if history else []
            self.query_one(f"#{name}-trend", Trend).show(points)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._history(event.row_key.value)
