"""The detached supervisor with stand-in processes and a real broker: ready, restart, clean down."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from console.sandbox import control
from console.sandbox.broker import Broker
from console.sandbox.layout import SandboxLayout
from console.sandbox.plan import BrokerSpec, Plan
from console.sandbox.ports import free_port, port_is_free
from console.sandbox.procs import group_members, pid_alive
from console.sandbox.topics import admin_client, partition_counts
from tests.utils.waiting import wait_until

from .conftest import start_sandbox

pytestmark = pytest.mark.broker


@pytest.fixture
def running(tiny_plan: Callable[..., Plan]) -> Iterator[tuple[SandboxLayout, Plan, dict[str, Any]]]:
    plan = tiny_plan()
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    yield layout, plan, state
    if control.supervisor_pid(layout):
        control.down(layout)


def _state(layout: SandboxLayout) -> dict[str, Any]:
    """The supervisor's state file, or {} while it is not written yet."""
    return control.read_state(layout) or {}


def all_pids(state: dict[str, Any]) -> list[int]:
    pids = [p["pgid"] for p in state["processes"].values()]
    pids.append(state["broker"]["pid"])
    pids.append(state["supervisor_pid"])
    return pids


def test_up_is_ready_with_topics_registry_and_logs(running: tuple[SandboxLayout, Plan, dict[str, Any]]) -> None:
    layout, plan, state = running
    assert state["phase"] == "ready"
    assert {n: (p["ready"], p["restarts"]) for n, p in state["processes"].items()} == {
        "shop": (True, 0), "shop-dapr": (True, 0)}
    assert control.supervisor_pid(layout) == state["supervisor_pid"]
    assert layout.pid.read_text() == str(state["supervisor_pid"])
    admin = admin_client(plan.broker.bootstrap)
    try:
        assert partition_counts(admin) == {"orders": 3, "payments": 1, "orders-dlq": 1}
    finally:
        admin.close()
    shop, sidecar = plan.processes[1], plan.processes[0]
    registry = json.loads(layout.registry.read_text())
    assert registry == {"shop": {"app_port": shop.port, "dapr_http_port": sidecar.port, "dapr_grpc_port": 0}}
    assert layout.log("broker").exists()
    assert layout.log("shop").exists()
    records = [json.loads(line) for line in layout.log("supervisor").read_text().splitlines()]
    assert any(r["msg"] == "sandbox ready" for r in records)  # structured JSON, one record per line


def test_up_reports_each_step_as_it_happens(tiny_plan: Callable[..., Plan], tmp_path: Path) -> None:
    plan = tiny_plan()
    plan.processes[1].argv += ["--fail-once", str(tmp_path / "crashed-once")]
    layout = SandboxLayout(Path(plan.dir))
    steps: list[str] = []
    try:
        control.start_supervisor(layout, plan, timeout_s=60, report=steps.append)
    finally:
        control.down(layout)
    assert steps[:3] == [f"broker {plan.broker.bootstrap} (memory) ready",
                         "topics: 3 created, 0 already there (kustomize/base)",
                         "started: shop-dapr"]  # the service starts once its sidecar answers
    assert "started: shop" in steps
    assert "shop exited with code 3 and was restarted (restart 1; `todo-console sandbox logs shop` says why)" in steps
    ready = [step.removeprefix("ready: ").split(", ") for step in steps if step.startswith("ready: ")]
    assert sorted(name for names in ready for name in names) == ["shop", "shop-dapr"]
    assert "shop" in ready[-1]  # ready only after its restart
    assert steps.index("started: shop") < steps.index(
        "shop exited with code 3 and was restarted (restart 1; `todo-console sandbox logs shop` says why)")


def test_a_killed_child_is_restarted_and_counted(running: tuple[SandboxLayout, Plan, dict[str, Any]]) -> None:
    layout, _, state = running
    old_pid = state["processes"]["shop"]["pid"]
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        proc = _state(layout).get("processes", {}).get("shop", {})
        return proc if proc.get("restarts") == 1 and proc.get("ready") and proc.get("pid") != old_pid else None

    proc = wait_until(restarted, 20, message="shop restarted and ready")
    assert proc["last_exit"] == -signal.SIGKILL
    assert not pid_alive(old_pid)
    # The orphaned grandchild of the killed leader was reaped with its group.
    assert wait_until(lambda: not [p for p in group_members(old_pid) if pid_alive(p)], 5, message="old group gone")
    status = control.status(layout)
    assert status["processes"]["shop"]["restarts"] == 1
    assert status["processes"]["shop-dapr"]["restarts"] == 0
    assert status["processes"]["shop"]["uptime_s"] is not None

    # Killed again straight away: counted again, after the (doubled) backoff.
    os.kill(proc["pid"], signal.SIGKILL)
    wait_until(lambda: _state(layout)["processes"]["shop"]["restarts"] == 2, 20, message="2nd restart")


def test_a_crashed_broker_is_restarted_with_its_topics(running: tuple[SandboxLayout, Plan, dict[str, Any]]) -> None:
    layout, plan, state = running
    os.kill(state["broker"]["pid"], signal.SIGKILL)
    wait_until(lambda: _state(layout)["broker"]["restarts"] == 1, 20, message="broker restart")
    admin = admin_client(plan.broker.bootstrap)
    try:  # memory storage came back empty; the supervisor created the topics again
        assert partition_counts(admin) == {"orders": 3, "payments": 1, "orders-dlq": 1}
    finally:
        admin.close()


def test_down_leaves_no_process_and_frees_ports(running: tuple[SandboxLayout, Plan, dict[str, Any]]) -> None:
    layout, plan, state = running
    assert {name for name, _ in control.held_ports(state)} == {"shop", "shop-dapr", "broker"}
    grandchildren = list(group_members(state["processes"]["shop"]["pgid"]))
    assert len(grandchildren) == 2  # the stand-in and its `sleep`
    assert control.down(layout).leftovers == []
    for pid in all_pids(state) + grandchildren:
        assert not pid_alive(pid), pid
    for spec in plan.processes:
        assert spec.port is not None
        assert port_is_free(spec.port)
    assert plan.broker.port is not None
    assert port_is_free(plan.broker.port)
    assert control.held_ports(_state(layout)) == []
    assert not layout.pid.exists()
    assert _state(layout)["phase"] == "stopped"
    assert _state(layout)["broker"]["pid"] is None  # no dead pid left in the record
    with pytest.raises(control.SandboxError, match="not up"):
        control.down(layout)


def test_down_cleans_up_after_a_dead_supervisor(running: tuple[SandboxLayout, Plan, dict[str, Any]]) -> None:
    layout, _, state = running
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(state["supervisor_pid"]), 5, message="supervisor gone")
    assert control.status(layout)["phase"] == "supervisor-gone"
    with pytest.raises(control.SandboxError, match=r"earlier sandbox .* still running"):
        control.start_supervisor(layout, Plan.load(layout.plan))
    leftovers = control.down(layout).leftovers
    assert set(leftovers) == {p["pgid"] for p in state["processes"].values()} | {state["broker"]["pid"]}
    for pid in all_pids(state):
        assert not pid_alive(pid), pid


def test_second_up_is_refused(running: tuple[SandboxLayout, Plan, dict[str, Any]],
                              tiny_plan: Callable[..., Plan]) -> None:
    layout, _, _ = running
    with pytest.raises(control.SandboxError, match="already up"):
        control.start_supervisor(layout, tiny_plan())


def test_a_process_that_never_gets_ready_is_reported(tiny_plan: Callable[..., Plan]) -> None:
    plan = tiny_plan(ready_timeout_s=2.0)
    plan.processes[1].ready_status = 299  # the stand-in answers 200: never what we wait for
    layout = SandboxLayout(Path(plan.dir))
    try:
        with pytest.raises(control.SandboxError, match="not ready after 2s: shop;"):
            control.start_supervisor(layout, plan, timeout_s=30)
        assert control.status(layout)["phase"] == "degraded"
    finally:
        control.down(layout)


def test_a_broker_that_cannot_start_fails_up_and_cleans_up(tiny_plan: Callable[..., Plan]) -> None:
    plan = tiny_plan()
    plan.broker.mode, plan.broker.bootstrap = "external", "127.0.0.1:1"  # nothing listens on port 1
    layout = SandboxLayout(Path(plan.dir))
    with pytest.raises(control.SandboxError, match="sandbox failed to start: no broker answers"):
        control.start_supervisor(layout, plan, timeout_s=30)
    assert control.supervisor_pid(layout) is None
    assert all(p.port is None or port_is_free(p.port) for p in plan.processes)


def test_a_process_waits_for_its_dependency_then_starts_anyway(tiny_plan: Callable[..., Plan]) -> None:
    plan = tiny_plan()
    shop = plan.processes[1]
    shop.start_after_url, shop.start_after_timeout_s = f"http://127.0.0.1:{free_port()}/never", 1.5
    layout = SandboxLayout(Path(plan.dir))
    try:
        state = start_sandbox(layout, plan)
        sidecar_started = state["processes"]["shop-dapr"]["started_at"]
        assert state["processes"]["shop"]["started_at"] - sidecar_started >= 1.4
        assert "starting without its dependency" in layout.log("supervisor").read_text()
    finally:
        control.down(layout)


def test_an_external_broker_gets_the_topics_and_is_never_stopped(
    tiny_plan: Callable[..., Plan], tansu: Broker
) -> None:
    """KAFKA_BOOTSTRAP mode: topics are created on the existing broker, which outlives `down`."""
    plan = tiny_plan()
    plan.broker = BrokerSpec("external", tansu.bootstrap)
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    try:
        assert state["broker"]["mode"] == "external"
        assert state["broker"]["pid"] is None
        admin = admin_client(tansu.bootstrap)
        try:
            assert partition_counts(admin) == {"orders": 3, "payments": 1, "orders-dlq": 1}
        finally:
            admin.close()
    finally:
        control.down(layout)
    assert tansu.alive()
    port = plan.processes[0].port
    assert port is not None
    assert port_is_free(port)


def test_liveness_is_probed_at_its_own_period(tiny_plan: Callable[..., Plan], tmp_path: Path) -> None:
    """As kubelet with the manifests' periods (readiness 5 s, liveness 10 s): each probe at its own."""
    requests = tmp_path / "requests"
    plan = tiny_plan(liveness_interval_s=1.2)  # readiness every 0.3 s (tiny_plan)
    shop = plan.processes[1]
    shop.argv += ["--requests-log", str(requests)]
    shop.liveness_url = f"http://127.0.0.1:{shop.port}/healthz"
    layout = SandboxLayout(Path(plan.dir))
    start_sandbox(layout, plan)

    def paths() -> list[str]:
        return requests.read_text().split() if requests.exists() else []

    try:
        seen = wait_until(lambda: paths().count("/readyz") >= 24 and paths(), 60, message="readiness probes")
    finally:
        control.down(layout)
    ready, live = seen.count("/readyz"), seen.count("/healthz")
    assert 1 <= live <= ready // 2, (ready, live)  # about a quarter; probed with readiness it would be all


def test_a_hung_process_fails_liveness_and_is_restarted(tiny_plan: Callable[..., Plan], tmp_path: Path) -> None:
    hang = tmp_path / "hang"
    plan = tiny_plan()
    shop = plan.processes[1]
    shop.argv += ["--hang-file", str(hang)]
    shop.liveness_url, shop.liveness_failures = f"http://127.0.0.1:{shop.port}/healthz", 3
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    old_pid = state["processes"]["shop"]["pid"]
    try:
        hang.touch()  # alive as a process, but it answers nothing any more
        proc = wait_until(lambda: _state(layout)["processes"]["shop"]["restarts"] == 1
                          and _state(layout)["processes"]["shop"], 20, message="liveness restart")
        assert proc["last_exit"] == -signal.SIGTERM
        assert not pid_alive(old_pid)
        assert "liveness probe failed" in layout.log("supervisor").read_text()
        hang.unlink()
        wait_until(lambda: _state(layout)["processes"]["shop"]["ready"], 20, message="ready again")
        assert _state(layout)["processes"]["shop-dapr"]["restarts"] == 0
    finally:
        hang.unlink(missing_ok=True)
        control.down(layout)
