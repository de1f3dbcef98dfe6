"""Rollouts: each Deployment's progress (updated/ready/available of desired, kubectl's verdict) and its
conditions; a Deployment's revision history; restart and undo, each previewed as an API-server dry run and
confirmed first. Hidden and refused under --readonly."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from console.model.rollout import Revision, RolloutStatus, short_image
from console.sources.workloads import RestartResult, UndoResult
from console.tui import actions, render
from console.tui.screens.base import DashboardScreen
from console.tui.screens.confirm import ConfirmScreen
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.source_state import SourceState

BAR = 12
MUTATION_KEYS: list[BindingType] = [Binding("r", "restart", "Restart"), Binding("u", "undo", "Undo (roll back)")]


def progress(r: RolloutStatus) -> Text:
    """`████████░░░░ 2/3 updated`: how far the new ReplicaSet has come."""
    desired = max(r.desired, 1)
    done = min(BAR, round(BAR * r.updated / desired))
    ready = min(done, round(BAR * r.available / desired))
    colour = "red" if r.problem else "green" if r.done else "yellow"
    return Text.assemble(("█" * ready, colour), ("▒" * (done - ready), colour), ("░" * (BAR - done), "dim"),
                         f" {r.updated}/{r.desired}")


def conditions_text(conditions: tuple[object, ...], now: float) -> Text:
    text = Text()
    for c in conditions:
        status = getattr(c, "status", "")
        text.append(f"{getattr(c, 'type', ''):<16}", style="bold")
        text.append(f"{status:<8}", style="green" if status == "True" else "red" if status == "False" else "yellow")
        text.append(f"{getattr(c, 'reason', None) or '-':<28}{render.ago(getattr(c, 'last_transition', None), now):<12}"
                    f"{getattr(c, 'message', None) or ''}\n")
    return text or Text("no conditions", style="dim")


class RolloutsScreen(DashboardScreen):
    TITLE = "Rollouts"
    AREAS = ("workloads",)
    MUTATIONS = frozenset({"restart", "undo"})
    ROWS = "#rollouts"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Revision history"), *MUTATION_KEYS]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="rollouts-panel", classes="panel") as panel:
            panel.border_title = "Deployments (enter: history)"
            yield SourceState(id="workloads-state")
            yield LiveTable("DEPLOYMENT", "STATE", "PROGRESS", "READY", "AVAILABLE", "REVISION", "IMAGES", "MESSAGE",
                            id="rollouts")
        with Vertical(id="conditions-panel", classes="panel") as panel:
            panel.border_title = "Conditions"
            yield Static(id="conditions")

    def rollouts(self) -> dict[str, RolloutStatus]:
        view = self.hub.view("workloads")
        return {r.name: r for r in view.value.rollouts} if view.value is not None else {}

    def draw(self) -> None:
        if not self.show_state("#workloads-state", self.hub.view("workloads")):
            return
        rows = [(r.name, (r.name, render.state(r.state.value, problem=r.problem), progress(r), f"{r.ready}/{r.desired}",
                          r.available, r.revision, ", ".join(short_image(i) for i in r.images), r.message))
                for r in self.rollouts().values()]
        table = self.table("#rollouts")
        table.show(rows)
        self._conditions(table.selected_key)

    def _conditions(self, name: str | None) -> None:
        r = self.rollouts().get(name or "")
        self.put("#conditions", conditions_text(r.conditions, self.now) if r else "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._conditions(event.row_key.value)

    def selected(self) -> str | None:
        return self.query_one("#rollouts", LiveTable).selected_key

    def open_row(self, key: str) -> None:
        self.app.push_screen(HistoryScreen(key))

    def action_restart(self) -> None:
        name = self.selected()
        if name:
            restart(self, name)

    def action_undo(self) -> None:
        name = self.selected()
        if name:
            undo(self, name)


def restart(screen: DashboardScreen, name: str) -> None:
    if screen.dashboard.refuse_if_readonly("restart"):
        return

    def previewed(preview: RestartResult) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                screen.run_io(f"restart {name}", lambda: actions.restart(screen.hub, name), done)
        screen.app.push_screen(ConfirmScreen(f"Restart {name}?", f"dry run: {preview.detail}"), answered)

    def done(result: RestartResult) -> None:
        screen.app.notify(f"{name} restarted: {result.detail}", timeout=10)
        screen.dashboard.refresh_now("workloads")
    screen.run_io(f"preview the restart of {name}", lambda: actions.restart(screen.hub, name, dry_run=True),
                      previewed)


def undo(screen: DashboardScreen, name: str) -> None:
    if screen.dashboard.refuse_if_readonly("undo"):
        return

    def previewed(preview: UndoResult) -> None:
        plan = preview.plan
        body = (f"{plan.summary}\nfrom revision {plan.from_revision} to revision {plan.to_revision} "
                f"({plan.replicaset}: {', '.join(short_image(i) for i in plan.images)})")

        def answered(yes: bool | None) -> None:
            if yes:
                screen.run_io(f"undo {name}", lambda: actions.undo(screen.hub, name), done)
        screen.app.push_screen(ConfirmScreen(f"Roll {name} back?", body, can_proceed=not plan.skipped), answered)

    def done(result: UndoResult) -> None:
        screen.app.notify(f"{name}: {result.plan.summary}", timeout=10)
        screen.dashboard.refresh_now("workloads")
    screen.run_io(f"preview the undo of {name}", lambda: actions.undo(screen.hub, name, dry_run=True), previewed)


class HistoryScreen(DashboardScreen):
    """A Deployment's revisions, oldest first, read on demand (kubectl rollout history)."""

    TITLE = "Rollouts"
    AREAS = ("workloads",)
    MUTATIONS = frozenset({"restart", "undo"})
    BINDINGS: ClassVar[list[BindingType]] = [*MUTATION_KEYS, Binding("ctrl+r", "reload", "Read again")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.deployment = name
        self.revisions: list[Revision] | None = None
        self.problem: str | None = None

    def crumbs(self) -> str:
        return f"Rollouts > {self.deployment} > history"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="history-panel", classes="panel") as panel:
            panel.border_title = f"{self.deployment}: revisions"
            yield Static(id="status")
            yield LiveTable("REVISION", "REPLICASET", "IMAGES", "CHANGE-CAUSE", "AGE", "PODS", "RESTARTED-AT",
                            id="revisions")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_reload()

    def action_reload(self) -> None:
        self.run_io(f"history of {self.deployment}", lambda: actions.history(self.hub, self.deployment),
                        self.show_revisions)

    def show_revisions(self, revisions: list[Revision]) -> None:
        self.revisions = revisions
        self.draw()

    def draw(self) -> None:
        workloads = self.hub.view("workloads").value
        rollout = next((r for r in workloads.rollouts if r.name == self.deployment), None) if workloads else None
        status = Text.assemble(render.state(rollout.state.value, problem=rollout.problem), " ", progress(rollout),
                               f"  {rollout.message}") if rollout else Text("")
        if self.revisions is None:
            status.append("\nreading the history...", style="dim")
        self.put("#status", status)
        now = self.now
        self.table("#revisions").show([
            (str(r.revision), (f"{r.revision} (current)" if r.current else str(r.revision), r.replicaset,
                               ", ".join(short_image(i) for i in r.images), r.change_cause,
                               render.age(now - r.created_at) if r.created_at else None,
                               f"{r.ready}/{r.replicas}", r.restarted_at)) for r in self.revisions or ()])

    def action_restart(self) -> None:
        restart(self, self.deployment)

    def action_undo(self) -> None:
        undo(self, self.deployment)
