"""Platform resources: Strimzi (Kafka, KafkaNodePool, KafkaTopic), Dapr (Component, Subscription, Resiliency,
Configuration), KEDA (ScaledObject, HPA) and cert-manager (Certificate), problems first, with the
highlighted resource's facts and conditions below; kinds that cannot be read are said, not hidden."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from console.model.platform import PlatformResource
from console.tui import render
from console.tui.screens.base import DashboardScreen
from console.tui.screens.rollouts import conditions_text
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.source_state import SourceState


def key_of(r: PlatformResource) -> str:
    return f"{r.kind}/{r.namespace}/{r.name}"


class PlatformScreen(DashboardScreen):
    TITLE = "Platform"
    AREAS = ("workloads",)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="resources-panel", classes="panel") as panel:
            panel.border_title = "Strimzi · Dapr · KEDA · cert-manager"
            yield SourceState(id="workloads-state")
            yield Static(id="unreadable")
            yield LiveTable("KIND", "NAMESPACE", "NAME", "READY", "STATE", "DETAIL", "MESSAGE", id="resources")
        with VerticalScroll(id="conditions-panel", classes="panel") as panel:
            panel.border_title = "Conditions"
            yield Static(id="conditions")

    def resources(self) -> dict[str, PlatformResource]:
        view = self.hub.view("workloads")
        if view.value is None:
            return {}
        ordered = sorted(view.value.platform.resources, key=lambda r: (not r.problem, r.kind, r.namespace, r.name))
        return {key_of(r): r for r in ordered}

    def draw(self) -> None:
        view = self.hub.view("workloads")
        if not self.show_state("#workloads-state", view) or view.value is None:
            return
        unreadable = view.value.platform.unreadable
        self.put("#unreadable",
            Text("cannot read: " + "; ".join(f"{kind}: {error}" for kind, error in unreadable), "bold red")
            if unreadable else "")
        rows = [(key, (r.kind, r.namespace, r.name, "-" if r.ready is None else "yes" if r.ready else "no",
                       render.state(r.state, problem=r.problem),
                       "  ".join(f"{k}={v}" for k, v in r.facts() if v), r.message))
                for key, r in self.resources().items()]
        table = self.table("#resources")
        table.show(rows)
        self._conditions(table.selected_key)

    def _conditions(self, key: str | None) -> None:
        r = self.resources().get(key or "")
        if r is None:
            self.put("#conditions", "")
            return
        text = Text.assemble((f"{r.kind} {r.namespace}/{r.name}", "bold"), "  ",
                             *(f"{k}={v}  " for k, v in r.facts() if v), "\n")
        text.append_text(conditions_text(r.conditions, self.now))
        self.put("#conditions", text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._conditions(event.row_key.value)
