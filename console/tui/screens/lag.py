"""Lag, drilled down: groups (worst first) → a group's topics and partitions → one partition's history.
Lag in messages and in time, their sparklines, Burrow's status, the catch-up ETA, and what KEDA would do.
Everything comes from the hub's lag history: one sample per refresh, no Kafka call from here."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from console.live.hub import LagView
from console.model.kafka import TopicPartition
from console.model.keda import ScalingDecision
from console.model.lag import GroupLag, PartitionLag
from console.tui import render
from console.tui.screens.base import DashboardScreen
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.source_state import SourceState
from console.tui.widgets.trend import Trend

SPARK_POINTS = 30


def keda_cell(d: ScalingDecision | None) -> str:
    if d is None:
        return "-"
    metrics = ", ".join(f"{t.metric}/{t.trigger.lag_threshold}" for t in d.triggers)
    return f"{d.desired} replica{'s' if d.desired != 1 else ''} ({'active' if d.active else 'inactive'}, lag {metrics})"


def keda_text(d: ScalingDecision | None) -> Text:
    if d is None:
        return Text("no ScaledObject scales this group", style="dim")
    so = d.scaled_object
    text = Text.assemble((f"ScaledObject {so.name}", "bold"), f" → Deployment {so.target}: ",
                         (f"{d.desired} replica{'s' if d.desired != 1 else ''}", "bold"),
                         f" ({'active' if d.active else 'inactive'}; min {so.min_replicas}, max {so.max_replicas}"
                         + (f", now {d.current}" if d.current is not None else "") + f"): {d.reason}")
    for t in d.triggers:
        text.append(f"\n  trigger {t.metric_name}: lag {t.lag} (metric {t.metric}, threshold "
                    f"{t.trigger.lag_threshold}, activation {t.trigger.activation_lag_threshold}) on "
                    f"{t.partitions} partitions, {t.partitions_with_lag} lagging"
                    + (f", capped at {t.cap} replicas" if t.cap is not None else "")
                    + f" → {t.replicas} replica{'s' if t.replicas != 1 else ''}"
                    + (" (active)" if t.active else ""))
    return text


def eta(p: PartitionLag | GroupLag) -> str:
    if isinstance(p, GroupLag):
        if p.eta_s is not None:
            return render.duration(p.eta_s)
        lagging = [x for x in p.partitions if x.lag and x.eta_s is None]
        return lagging[0].eta_reason if lagging else "-"
    return render.duration(p.eta_s) if p.eta_s is not None else p.eta_reason


class LagScreen(DashboardScreen):
    TITLE = "Lag"
    AREAS = ("lag",)
    ROWS = "#groups"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Drill into the group")]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="groups-panel", classes="panel") as panel:
            panel.border_title = "Consumer groups (enter: topics and partitions)"
            yield SourceState(id="lag-state")
            yield LiveTable("GROUP", "STATUS", "LAG", "TIME LAG", "ETA", "IN/S", "OUT/S", "TREND", "PARTITIONS",
                            "KEDA", "WHY", id="groups")
        with Vertical(id="trend-panel", classes="panel") as trend:
            trend.border_title = "Selected group"
            yield Trend("lag (messages)", lambda v: f"{v:.0f}", id="lag-trend")
            yield Trend("lag (time)", render.age, id="time-trend")

    def draw(self) -> None:
        view = self.hub.view("lag")
        lag: LagView | None = view.value
        if not self.show_state("#lag-state", view) or lag is None:
            return
        rows = []
        for g in lag.groups:
            counts: dict[str, int] = {}
            for p in g.partitions:
                counts[p.status.value] = counts.get(p.status.value, 0) + 1
            worst = g.worst
            series = lag.series.get(g.group, ())
            rows.append((g.group, (
                g.group, render.state(g.status.value), g.total_lag, render.age(g.max_time_lag_s), eta(g),
                render.rate(sum(p.produce_rate or 0.0 for p in g.partitions)),
                render.rate(sum(p.consume_rate or 0.0 for p in g.partitions)),
                render.spark([float(total) for _at, total, _t in series], SPARK_POINTS // 2),
                " ".join(f"{n} {s}" for s, n in sorted(counts.items())), keda_cell(lag.keda.get(g.group)),
                g.error or (f"{worst.tp}: {worst.reason}" if worst and worst.status.value != "OK" else ""))))
        table = self.table("#groups")
        table.show(rows)
        self._trend(table.selected_key)

    def _trend(self, group: str | None) -> None:
        view = self.hub.view("lag")
        series = view.value.series.get(group, ()) if view.value is not None and group else ()
        self.query_one("#lag-trend", Trend).show([float(total) for _at, total, _t in series][-SPARK_POINTS:])
        self.query_one("#time-trend", Trend).show([t for _at, _total, t in series][-SPARK_POINTS:])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._trend(event.row_key.value)

    def open_row(self, key: str) -> None:
        self.app.push_screen(GroupLagScreen(key))


class GroupLagScreen(DashboardScreen):
    """One group: its topics (top), the highlighted topic's partitions (middle), what KEDA would do."""

    TITLE = "Lag"
    AREAS = ("lag",)
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Open the partition's history")]

    def __init__(self, group: str) -> None:
        super().__init__()
        self.group = group
        self.topic: str | None = None

    def crumbs(self) -> str:
        return f"Lag > {self.group}" + (f" > {self.topic}" if self.topic else "")

    def compose_body(self) -> ComposeResult:
        with Vertical(id="topics-panel", classes="panel") as panel:
            panel.border_title = "Topics"
            yield SourceState(id="lag-state")
            yield LiveTable("TOPIC", "PARTITIONS", "LAG", "TIME LAG", "STATUS", "ETA", "IN/S", "OUT/S", id="topics")
        with Vertical(id="partitions-panel", classes="panel") as panel:
            panel.border_title = "Partitions (enter: history)"
            yield LiveTable("PARTITION", "COMMITTED", "END", "LAG", "TIME LAG", "FROM", "ETA", "STATUS", "TREND",
                            "WHY", id="partitions")
        with Vertical(id="keda-panel", classes="panel") as panel:
            panel.border_title = "What KEDA would do"
            yield Static(id="keda")

    def _group(self) -> tuple[GroupLag | None, LagView | None]:
        view = self.hub.view("lag")
        if view.value is None:
            return None, None
        return next((g for g in view.value.groups if g.group == self.group), None), view.value

    def draw(self) -> None:
        if not self.show_state("#lag-state", self.hub.view("lag")):
            return
        group, lag = self._group()
        if group is None or lag is None:
            self.put("#keda", Text(f"no group {self.group} in the latest sample", "dim"))
            return
        topics: dict[str, list[PartitionLag]] = {}
        for p in group.partitions:
            topics.setdefault(p.tp.topic, []).append(p)
        rows = []
        for topic, parts in sorted(topics.items()):
            sub = GroupLag(group.group, group.status, group.state, group.members, tuple(parts))
            worst = sub.worst
            rows.append((topic, (topic, len(parts), sub.total_lag, render.age(sub.max_time_lag_s),
                                 render.state(worst.status.value if worst else None), eta(sub),
                                 render.rate(sum(p.produce_rate or 0.0 for p in parts)),
                                 render.rate(sum(p.consume_rate or 0.0 for p in parts)))))
        table = self.table("#topics")
        table.show(rows)
        self.topic = table.selected_key or (rows[0][0] if rows else None)
        self._partitions(topics.get(self.topic or "", []))
        self.put("#keda", keda_text(lag.keda.get(self.group)))

    def _partitions(self, parts: list[PartitionLag]) -> None:
        rows = []
        for p in sorted(parts, key=lambda p: p.tp.partition):
            samples = self.hub.lag_samples(self.group, p.tp)
            rows.append((str(p.tp), (str(p.tp), p.committed, p.end, p.lag, render.age(p.time_lag.seconds),
                                     p.time_lag.method, eta(p), render.state(p.status.value),
                                     render.spark([float(s.lag or 0) for s in samples], SPARK_POINTS // 2),
                                     p.reason)))
        self.query_one("#partitions", LiveTable).show(rows)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "topics" and event.row_key.value != self.topic:
            self.topic = event.row_key.value
            self.redraw()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "partitions" and event.row_key.value:
            self._open_partition(event.row_key.value)
        elif event.data_table.id == "topics":
            self.query_one("#partitions", LiveTable).focus()

    def action_open(self) -> None:
        key = self.query_one("#partitions", LiveTable).selected_key
        if key:
            self._open_partition(key)

    def _open_partition(self, key: str) -> None:
        group, _ = self._group()
        part = next((p for p in group.partitions if str(p.tp) == key), None) if group else None
        if part is not None:
            self.app.push_screen(PartitionLagScreen(self.group, part.tp))


class PartitionLagScreen(DashboardScreen):
    """One partition of one group: its verdict, and its lag in messages and in time over the history."""

    TITLE = "Lag"
    AREAS = ("lag",)

    def __init__(self, group: str, tp: TopicPartition) -> None:
        super().__init__()
        self.group = group
        self.tp = tp

    def crumbs(self) -> str:
        return f"Lag > {self.group} > {self.tp}"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="partition-panel", classes="panel") as panel:
            panel.border_title = f"{self.group} on {self.tp}"
            yield SourceState(id="lag-state")
            yield Static(id="facts")
            yield Trend("lag (messages)", lambda v: f"{v:.0f}", id="lag-trend")
            yield Trend("lag (time)", render.age, id="time-trend")
            yield Trend("committed offset", lambda v: f"{v:.0f}", id="committed-trend")

    def draw(self) -> None:
        lag: LagView | None = self.hub.view("lag").value
        if not self.show_state("#lag-state", self.hub.view("lag")) or lag is None:
            return
        group = next((g for g in lag.groups if g.group == self.group), None)
        p = next((p for p in group.partitions if p.tp == self.tp), None) if group else None
        samples = self.hub.lag_samples(self.group, self.tp)
        if p is None:
            self.put("#facts", Text("not in the latest sample", "dim"))
        else:
            self.put("#facts", Text.assemble(
                "status ", render.state(p.status.value), f": {p.reason}\n",
                f"committed {p.committed if p.committed is not None else '-'} of {p.end} (log start {p.start}): "
                f"lag {p.lag if p.lag is not None else '-'} messages, {render.age(p.time_lag.seconds)} "
                f"({p.time_lag.method})\n",
                f"consumes {render.rate(p.consume_rate)}/s, produced {render.rate(p.produce_rate)}/s, "
                f"trend {p.trend or '-'}; ETA {eta(p)}; {p.samples} samples ({p.complete:.0%} of the window)"))
        recent = samples[-SPARK_POINTS * 2:]
        self.query_one("#lag-trend", Trend).show([float(s.lag or 0) for s in recent])
        self.query_one("#time-trend", Trend).show([s.time_lag.seconds for s in recent])
        self.query_one("#committed-trend", Trend).show([float(s.committed or 0) for s in recent])
