"""The dashboard against the Kubernetes stand-in (through the official client, watch caches and all) and the
real broker: a rollout's history, undo and restart from the Rollouts screen after a dry run and a
confirmation; a pod described; the platform's conditions; --readonly refusing; and the API server going
away mid-session: its panels say so and keep the last data (stale), the Kafka panel keeps updating, keys
keep answering, and everything recovers when the API server comes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.live.slots import SlotView
from console.sandbox.broker import Broker
from console.target import ClusterTarget
from console.tui.app import DashboardApp, make_dashboard
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.pods import DescribeScreen
from console.tui.screens.rollouts import HistoryScreen, RolloutsScreen
from tests.console.tui.conftest import SIZE
from tests.console.tui.live import notes, select_row, table_rows, wait_for
from tests.utils.kube_apiserver import StandInCluster

pytestmark = pytest.mark.anyio
DEPLOYMENTS = ["audit", "backend", "frontend", "notification", "websocket", "worker"]


@pytest.fixture
def cluster_target(kubeconfig: Path, kafka_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> ClusterTarget:
    """The stand-in for Kubernetes, the suite's tansu for Kafka, nothing listening for Prometheus and Loki."""
    monkeypatch.setenv("TODO_CONSOLE_KAFKA_BOOTSTRAP", kafka_broker.bootstrap)
    monkeypatch.setenv("TODO_CONSOLE_PROMETHEUS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TODO_CONSOLE_LOKI_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TODO_CONSOLE_REQUEST_TIMEOUT_S", "2")
    return ClusterTarget(context=None, kubeconfig=kubeconfig, namespace="todo-app", in_cluster=False)


def dashboard(target: ClusterTarget, *, readonly: bool = False) -> DashboardApp:
    return make_dashboard(target, refresh_s=0.5, readonly=readonly)


def revision_of(app: DashboardApp, name: str) -> int | None:
    view = app.hub.view("workloads").value
    return next((r.revision for r in view.rollouts if r.name == name), None) if view else None


async def test_rollouts_history_undo_restart_then_a_pod_described_and_the_platforms_conditions(
        cluster_target: ClusterTarget) -> None:
    """One App for the mutations and the reads that follow them (an App's start and first refresh cost seconds
    on a loaded machine)."""
    app = dashboard(cluster_target)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        rows = await wait_for(pilot, lambda: table_rows(app, "#rollouts"), "the rollouts")
        assert [row[0] for row in rows] == DEPLOYMENTS
        await select_row(pilot, app, "#rollouts", "worker")
        await pilot.press("enter")
        assert isinstance(app.screen, HistoryScreen)
        revisions = await wait_for(pilot, lambda: table_rows(app, "#revisions"), "the history")
        assert [r[0] for r in revisions] == ["1", "2", "3 (current)"]
        assert revisions[1][2] == "todo-worker:0.0.9"

        await pilot.press("u")
        confirm = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen, "undo's plan")
        assert "from revision 3 to revision 2" in confirm.plan
        assert revision_of(app, "worker") == 3  # a dry run changed nothing
        await pilot.press("y")
        await wait_for(pilot, lambda: revision_of(app, "worker") == 4, "the rollback's new revision")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: [r[0] for r in table_rows(app, "#revisions")][-1] == "4 (current)",
                       "the history after the rollback")
        assert table_rows(app, "#revisions")[-1][2] == "todo-worker:0.0.9"

        await pilot.press("escape")
        assert isinstance(app.screen, RolloutsScreen)
        await select_row(pilot, app, "#rollouts", "worker")
        await pilot.press("r")
        confirm = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                                 "restart's dry run")
        assert "dry run" in confirm.plan
        await pilot.press("n")  # no: nothing happens
        assert revision_of(app, "worker") == 4
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "restart's dry run again")
        await pilot.press("y")
        await wait_for(pilot, lambda: revision_of(app, "worker") == 5, "the restart's new revision")
        assert any(n.startswith("worker restarted") for n in notes(app))

        await pilot.press("5")
        pods = await wait_for(pilot, lambda: table_rows(app, "#pods"), "the pods")
        worker = next(row[0] for row in pods if row[0].startswith("worker-"))
        await select_row(pilot, app, "#pods", worker)
        await wait_for(pilot, lambda: "app" in str(app.screen.query_one("#pod").render()), "the pod's containers")
        await pilot.press("d")
        assert isinstance(app.screen, DescribeScreen)
        text = await wait_for(pilot, lambda: (t := str(app.screen.query_one("#describe").render())).startswith("Name:")
                              and t, "the description")
        assert f"Name:           {worker}" in text
        assert "Readiness:" in text
        assert "Containers:" in text
        await pilot.press("6")
        resources = await wait_for(pilot, lambda: table_rows(app, "#resources"), "the platform")
        assert {"Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject", "Certificate"} <= {r[0] for r in resources}
        await select_row(pilot, app, "#resources", next(f"{r[0]}/{r[1]}/{r[2]}" for r in resources if r[0] == "Kafka"))
        assert "Ready" in str(app.screen.query_one("#conditions").render())


async def test_readonly_refuses_on_a_cluster(cluster_target: ClusterTarget, cluster: StandInCluster) -> None:
    app = dashboard(cluster_target, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: table_rows(app, "#rollouts"), "the rollouts")
        await select_row(pilot, app, "#rollouts", "worker")
        await pilot.press("r", "u")
        await pilot.pause(1.0)
        assert isinstance(app.screen, RolloutsScreen)
        assert revision_of(app, "worker") == 3


async def test_a_failing_source_shows_its_error_and_recovers_while_the_others_keep_updating(
        cluster_target: ClusterTarget, cluster: StandInCluster) -> None:
    app = dashboard(cluster_target)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub.view("workloads").ok and app.hub.view("lag").ok, "a first refresh")
        state = app.screen.query_one("#services-state")
        cluster.server.stop()
        view: SlotView[object] = await wait_for(
            pilot, lambda: (v := app.hub.view("workloads")).state == "stale" and v, "the API server's failure",
            within=90)
        assert view.failing_since is not None
        assert view.value is not None
        shown = await wait_for(pilot, lambda: "DOWN" in (t := str(state.render())) and t, "the panel's error")
        assert "stale" in shown
        assert "failing since" in shown
        assert table_rows(app, "#services")  # the last good data stays on screen
        lag_checked = app.hub.view("lag").checked_at
        await wait_for(pilot, lambda: (app.hub.view("lag").checked_at or 0) > (lag_checked or 0),
                       "the Kafka panel refreshing meanwhile")
        assert app.hub.view("lag").ok
        await pilot.press("4")  # keys answer while a source is down
        assert isinstance(app.screen, RolloutsScreen)
        await pilot.press("1")
        cluster.server.start()
        await wait_for(pilot, lambda: app.hub.view("workloads").ok, "the API server's recovery", within=90)
        await wait_for(pilot, lambda: "DOWN" not in str(app.screen.query_one("#services-state").render()),
                       "the panel's recovery")
