"""Dead letters: depth per DLQ (the hub's summaries) → the messages of one DLQ (browsed on demand) → one
message (headers, CloudEvent, reason). From there: jump to the event's logs, redrive with a dry-run preview
and a confirmation, purge with a confirmation. Mutations are hidden and refused under --readonly."""

from __future__ import annotations

import json
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from console.model.dlq import DlqSummary, PurgePlan, RedrivePlanItem, Selection
from console.model.logs import LogQuery
from console.output import table as text_table
from console.sources.dead_letters import PurgeResult, RedriveResult
from console.tui import actions, render
from console.tui.messages import ActionDone, DlqRedriven, FeedUpdated
from console.tui.screens.base import DashboardScreen
from console.tui.screens.confirm import ConfirmScreen
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.source_state import SourceState


def plan_text(plan: list[RedrivePlanItem]) -> str:
    if not plan:
        return "nothing to redrive: no dead letter waiting matches"
    return text_table(["POSITION", "EVENT ID", "TYPE", "ACTION", "WHY"],
                      [[i.letter.position, i.letter.event_id, i.letter.event_type, i.action, i.reason] for i in plan])


class DeadLettersScreen(DashboardScreen):
    TITLE = "Dead letters"
    AREAS = ("dead_letters",)
    ROWS = "#dlqs"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Browse the DLQ's messages")]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="dlqs-panel", classes="panel") as panel:
            panel.border_title = "Dead-letter topics (enter: messages)"
            yield SourceState(id="dlq-state")
            yield LiveTable("DLQ", "APPS", "FROM TOPICS", "PENDING", "WAITING", "REDRIVEN", "LAST HOUR",
                            "OLDEST WAITING", id="dlqs")

    def draw(self) -> None:
        view = self.hub.view("dead_letters")
        if not self.show_state("#dlq-state", view):
            return
        now = self.now
        rows = [(s.topic, (s.topic, ",".join(s.apps), ",".join(s.original_topics), s.pending,
                           Text(str(s.waiting) + ("" if s.scanned_all else "+"), style="bold yellow" if s.waiting else ""),
                           s.redriven, s.last_hour,
                           render.age(now - s.oldest_waiting_at) if s.oldest_waiting_at else None))
                for s in view.value or ()]
        self.table("#dlqs").show(rows)

    def open_row(self, key: str) -> None:
        self.app.push_screen(DlqMessagesScreen(key))


class DlqMessagesScreen(DashboardScreen):
    """The pending messages of one DLQ, oldest first; read again whenever the DLQ's summary changes."""

    TITLE = "Dead letters"
    AREAS = ("dead_letters",)
    ROWS = "#messages"
    MUTATIONS = frozenset({"redrive", "redrive_all", "purge"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Message detail"),
        Binding("l", "logs", "Logs of the event"),
        Binding("r", "redrive", "Redrive the message"),
        Binding("a", "redrive_all", "Redrive all waiting"),
        Binding("P", "purge", "Purge the DLQ", key_display="shift+p"),
        Binding("ctrl+r", "reload", "Read again"),
    ]

    def __init__(self, dlq: str) -> None:
        super().__init__()
        self.dlq = dlq
        self.rows: dict[str, actions.LetterRow] = {}
        self._summary: DlqSummary | None = None
        self.loaded = False

    def crumbs(self) -> str:
        return f"Dead letters > {self.dlq}"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="messages-panel", classes="panel") as panel:
            panel.border_title = f"{self.dlq}: pending messages, oldest first"
            yield SourceState(id="dlq-state")
            yield Static(id="loading")
            yield LiveTable("POSITION", "AGE", "EVENT ID", "TYPE", "FROM", "APP", "REDRIVES", "STATE", "REASON",
                            id="messages")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_reload()

    def feed_updated(self, message: FeedUpdated) -> None:
        super().feed_updated(message)
        summary = next((s for s in self.hub.view("dead_letters").value or () if s.topic == self.dlq), None)
        if message.area == "dead_letters" and summary is not None and summary != self._summary:
            self._summary = summary
            self.action_reload()

    def action_reload(self) -> None:
        self.query_one("#loading", Static).update(Text("reading the messages...", "dim"))
        self.run_io(f"browse {self.dlq}", lambda: actions.browse(self.hub, self.dlq), self.show_letters)

    def show_letters(self, rows: list[actions.LetterRow]) -> None:
        self.rows = {r.letter.position: r for r in rows}
        self.loaded = True
        self.query_one("#loading", Static).update(Text(f"{len(rows)} pending" if rows else "no pending messages",
                                                       "dim"))
        self.draw()

    def draw(self) -> None:
        self.show_state("#dlq-state", self.hub.view("dead_letters"))
        now = self.now
        self.table("#messages").show([
            (pos, (pos, render.ago(r.letter.dead_lettered_at, now), r.letter.event_id, r.letter.event_type,
                   r.letter.original_topic, r.letter.app_id, r.letter.redrive_count, render.state(r.state),
                   r.reason)) for pos, r in self.rows.items()])

    def selected(self) -> actions.LetterRow | None:
        key = self.query_one("#messages", LiveTable).selected_key
        return self.rows.get(key) if key else None

    def open_row(self, key: str) -> None:
        if key in self.rows:
            self.app.push_screen(DeadLetterScreen(self.dlq, self.rows[key]))

    def action_logs(self) -> None:
        row = self.selected()
        if row is not None:
            open_logs(self, row)

    def action_redrive(self) -> None:
        row = self.selected()
        if row is not None:
            start_redrive(self, self.dlq, Selection(ids=frozenset({row.letter.position})),
                          f"redrive {row.letter.position} of {self.dlq}")

    def action_redrive_all(self) -> None:
        start_redrive(self, self.dlq, Selection(everything=True), f"redrive every waiting message of {self.dlq}")

    def action_purge(self) -> None:
        if self.dashboard.refuse_if_readonly("purge"):
            return

        def planned(plan: PurgePlan) -> None:
            if not plan.count:
                self.app.notify(f"{self.dlq}: nothing to purge")
                return
            body = (f"{plan.count} pending dead letter(s) of {self.dlq} go: deleted where the broker supports "
                    "DeleteRecords, otherwise marked handled.\n" + "\n".join(
                        f"  partition {tp.partition}: below offset {off}" for tp, off in sorted(plan.before.items())))

            def answered(yes: bool | None) -> None:
                if yes:
                    self.run_io(f"purge {self.dlq}", lambda: actions.purge(self.hub, plan), self._purged)
            self.app.push_screen(ConfirmScreen(f"Purge {self.dlq}?", body), answered)
        self.run_io(f"plan the purge of {self.dlq}", lambda: actions.plan_purge(self.hub, self.dlq), planned)

    def _purged(self, result: PurgeResult) -> None:
        self.post_message(ActionDone("purge", f"purged {result.plan.count} of {self.dlq}: {result.detail}"))

    def on_action_done(self, message: ActionDone) -> None:
        self.app.notify(message.summary, severity="information" if message.ok else "error", timeout=10)
        self.dashboard.refresh_now("dead_letters")
        self.action_reload()

    def on_dlq_redriven(self, message: DlqRedriven) -> None:
        done = sum(1 for r in message.results if r.outcome == "redriven")
        other = [f"{r.item.letter.position} {r.outcome}: {r.detail}" for r in message.results
                 if r.outcome != "redriven"]
        self.app.notify(f"{message.dlq}: {done} redriven" + (f"; {'; '.join(other)}" if other else ""),
                        severity="information" if not other else "warning", timeout=10)
        self.dashboard.refresh_now("dead_letters")
        self.action_reload()


def start_redrive(screen: DashboardScreen, dlq: str, selection: Selection, what: str) -> None:
    """The dry run first (the plan), then a confirmation showing it, then the redrive in a worker; the screen
    gets `DlqRedriven` with the outcome of each message."""
    if screen.dashboard.refuse_if_readonly("redrive"):
        return

    def planned(plan: list[RedrivePlanItem]) -> None:
        sendable = [i for i in plan if i.action == "redrive"]

        def answered(yes: bool | None) -> None:
            if yes:
                screen.run_io(what, lambda: actions.redrive(screen.hub, plan), lambda results: redriven(results))
        screen.app.push_screen(ConfirmScreen(f"{what.capitalize()}? (dry run below: nothing sent yet)",
                                             plan_text(plan), can_proceed=bool(sendable)), answered)

    def redriven(results: list[RedriveResult]) -> None:
        screen.post_message(DlqRedriven(dlq, results))
    screen.run_io(f"plan: {what}", lambda: actions.plan_redrive(screen.hub, dlq, selection), planned)


def open_logs(screen: DashboardScreen, row: actions.LetterRow) -> None:
    """The Logs screen, filtered on this dead letter's CloudEvent id."""
    if not row.letter.event_id:
        screen.app.notify("this dead letter is not a CloudEvent: no event id to look for", severity="warning")
        return
    screen.dashboard.show_logs(LogQuery(event_id=row.letter.event_id, limit=200))


class DeadLetterScreen(DashboardScreen):
    """One dead letter: where it came from, why it failed, its headers and its CloudEvent."""

    TITLE = "Dead letters"
    AREAS = ()
    MUTATIONS = frozenset({"redrive"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "logs", "Logs of the event"),
        Binding("r", "redrive", "Redrive this message"),
    ]

    def __init__(self, dlq: str, row: actions.LetterRow) -> None:
        super().__init__()
        self.dlq = dlq
        self.row = row

    def crumbs(self) -> str:
        return f"Dead letters > {self.dlq} > {self.row.letter.position}"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="text-panel", classes="panel") as panel:
            panel.border_title = f"Dead letter {self.row.letter.position}"
            yield Static(detail_text(self.row, self.now), id="detail")

    def action_logs(self) -> None:
        open_logs(self, self.row)

    def action_redrive(self) -> None:
        start_redrive(self, self.dlq, Selection(ids=frozenset({self.row.letter.position})),
                      f"redrive {self.row.letter.position} of {self.dlq}")

    def on_dlq_redriven(self, message: DlqRedriven) -> None:
        for r in message.results:
            self.app.notify(f"{r.item.letter.position}: {r.outcome}: {r.detail}",
                            severity="information" if r.outcome == "redriven" else "warning", timeout=10)
        self.dashboard.refresh_now("dead_letters")


def detail_text(row: actions.LetterRow, now: float) -> Text:
    d = row.letter
    settled = row.settled
    text = Text()
    facts = [
        ("dead letter", f"{d.position} ({row.state}, redrive count {d.redrive_count})"),
        ("age", render.ago(d.dead_lettered_at, now)),
        ("from", f"{d.original_topic}[{d.original_partition}]@{d.original_offset}"
         + (f" (app {d.app_id}, attempts {d.attempts})" if d.app_id else "")),
        ("reason", row.reason or "(none recorded; daprd writes none: press l for the logs by event id)"),
        ("key", d.record.key.decode("utf-8", errors="replace") if d.record.key is not None else "-"),
        ("event", f"id={d.event_id} type={d.event_type}"),
    ]
    if settled is not None:
        facts.append(("redriven", f"by {settled.by} to {settled.target_topic}[{settled.target_partition}]"
                                  f"@{settled.target_offset}"))
    for name, value in facts:
        text.append(f"{name:<13}", style="bold")
        text.append(f"{value}\n")
    text.append("headers\n", style="bold")
    for header, raw in d.record.headers:
        text.append(f"  {header}: {raw.decode('utf-8', errors='replace')}\n")
    if d.cloudevent is not None:
        text.append("cloudevent\n", style="bold")
        for field, content in d.cloudevent.items():
            text.append(f"  {field}: {content if isinstance(content, str) else json.dumps(content)}\n")
    else:
        text.append("value\n", style="bold")
        text.append("  " + (d.record.value or b"").decode("utf-8", errors="replace") + "\n")
    return text
