"""Logs, tailed live: the newest lines of the current query (service, correlation id, event id), refreshed
by the App's logs worker every period while this screen is shown. The Dead letters screen opens it on a
dead letter's event id (`l`)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Log

from console.commands.logs import readable
from console.live.hub import LogsView
from console.live.slots import SlotView
from console.model.logs import LogQuery
from console.tui.screens.base import DashboardScreen
from console.tui.widgets.source_state import SourceState

FIELDS = ("service", "correlation_id", "event_id")
READING = "reading the lines of the new query..."


class LogsScreen(DashboardScreen):
    TITLE = "Logs"
    AREAS = ("logs",)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "field('service')", "Service"),
        Binding("c", "field('correlation_id')", "Correlation id"),
        Binding("e", "field('event_id')", "Event id"),
        Binding("x", "clear_query", "Clear the query"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._shown: list[str] | None = None
        self._filled: LogQuery | None = None  # the query the fields were last filled from

    def compose_body(self) -> ComposeResult:
        self._filled = query = self.hub.log_query
        with Horizontal(id="query"):
            yield Input(query.service or "", placeholder="service (app-id, or app-dapr)", id="service")
            yield Input(query.correlation_id or "", placeholder="correlation id", id="correlation_id")
            yield Input(query.event_id or "", placeholder="event id", id="event_id")
        with Vertical(id="lines-panel", classes="panel") as panel:
            panel.border_title = "Newest lines (s, c, e: edit the query; enter applies it)"
            yield SourceState(id="logs-state")
            yield Log(id="lines", highlight=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#lines", Log).focus()  # not an input: the dashboard's keys keep working

    def on_screen_resume(self) -> None:
        """Fill the fields only with a query set elsewhere (the Dead letters screen's `l`). The resume can come
        after keys typed into a field just focused (`8` then `s` typed ahead on a busy screen): filling them
        again with the same query would wipe what was typed (`backend` became `ackend`)."""
        query = self.hub.log_query
        if query != self._filled:
            self._filled = query
            for name in FIELDS:
                self.query_one(f"#{name}", Input).value = getattr(query, name) or ""
        super().on_screen_resume()
        self.dashboard.refresh_now("logs")

    def draw(self) -> None:
        view: SlotView[LogsView] = self.hub.view("logs")
        if not self.show_state("#logs-state", view) or view.value is None:
            return
        if view.value.query != self.hub.log_query:  # the query changed; its lines come with the next refresh
            self._write([READING])
            return
        needle = self.filter_text.lower()
        shown = [readable(line) for line in view.value.lines]
        self._write([text for text in shown if needle in text.lower()] if needle else shown)

    def _write(self, lines: list[str]) -> None:
        if lines == self._shown:
            return
        self._shown = lines
        log = self.query_one("#lines", Log)
        log.clear()
        log.write_lines(lines or ["no lines match"])

    def action_back(self) -> None:
        """esc in a query field leaves the field (the query stays); elsewhere, as on every screen."""
        if isinstance(self.focused, Input) and self.focused.id in FIELDS:
            self.query_one("#lines", Log).focus()
            return
        super().action_back()

    def action_field(self, name: str) -> None:
        self.set_focus(self.query_one(f"#{name}", Input))  # at once: the next key typed goes into the field

    def action_clear_query(self) -> None:
        for name in FIELDS:
            self.query_one(f"#{name}", Input).value = ""
        self._apply()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in FIELDS:
            self._apply()
            self.query_one("#lines", Log).focus()
        else:
            super().on_input_submitted(event)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            super().on_input_changed(event)

    def _apply(self) -> None:
        def value(name: str) -> str | None:
            return self.query_one(f"#{name}", Input).value.strip() or None
        self._filled = LogQuery(service=value("service"), correlation_id=value("correlation_id"),
                                event_id=value("event_id"), limit=self.hub.log_query.limit)
        self.hub.set_log_query(self._filled)
        self.redraw()  # the previous query's lines go at once
        self.dashboard.refresh_now("logs")
