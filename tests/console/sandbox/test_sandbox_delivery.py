"""Durable mode end to end: a broker killed under load loses nothing, and a stalled delivery is reported.

One real durable sandbox (tansu on the local S3, the backend and the audit service with their dev
sidecars) serves both tests. Every write carries its own correlation id, so "every action answered
2xx reaches the audit log exactly once" is checked action by action (tests/bench/delivery_load.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from console import cli
from console.sandbox import control, delivery
from console.sandbox.layout import SandboxLayout
from tests.bench.delivery_load import drive, wait_for_delivery

from .conftest import diagnose, require_tansu

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def durable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxLayout, str, str]]:
    """(layout, API URL, JWT secret) of a running durable sandbox with the backend and the audit service."""
    require_tansu()
    layout = SandboxLayout(tmp_path_factory.mktemp("durable") / "sandbox")
    try:
        result = control.up(layout, durable=True, port_base=0, services=["backend", "audit"], timeout_s=120)
    except control.SandboxError as exc:
        failure = f"{exc}\n{diagnose(layout)}"
        if control.supervisor_pid(layout):
            control.down(layout)
        pytest.fail(failure, pytrace=False)
    secret = json.loads(layout.secrets.read_text())["todo-auth"]["jwt-secret"]
    try:
        yield layout, f"http://127.0.0.1:{result.state['processes']['backend']['port']}", secret
    finally:
        control.down(layout)


def broker_pid(layout: SandboxLayout) -> int:
    pid = ((control.read_state(layout) or {}).get("broker") or {}).get("pid")
    assert isinstance(pid, int), "the broker is not running"
    return pid


def test_a_broker_killed_under_load_loses_no_accepted_action(durable: tuple[SandboxLayout, str, str]) -> None:
    layout, api, secret = durable
    killed: dict[str, Any] = {}

    def kill_during_load() -> None:
        time.sleep(2.0)
        killed["pid"] = broker_pid(layout)
        os.kill(killed["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_during_load)
    killer.start()
    driven = asyncio.run(drive(api, secret, rate=20, seconds=6))
    killer.join()
    assert len(driven.accepted) == len(driven.answers), driven.counts()  # the API never noticed
    found = wait_for_delivery(layout.root, driven.accepted, timeout_s=150)
    assert found.missing_actions == [], f"{len(found.missing_actions)} accepted actions not audited\n{diagnose(layout)}"
    assert found.duplicates == 0
    assert len(found.expected) >= 2 * len(driven.accepted)  # task-events and task-updates at least
    state = control.read_state(layout) or {}
    assert state["broker"]["restarts"] >= 1
    assert state["broker"]["pid"] != killed["pid"]


def test_a_stalled_delivery_is_reported_then_clears(durable: tuple[SandboxLayout, str, str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    layout, api, secret = durable
    frozen = broker_pid(layout)
    os.kill(frozen, signal.SIGSTOP)  # alive to the supervisor, answering nobody: publishing stalls
    try:
        driven = asyncio.run(drive(api, secret, rate=5, seconds=2, seed=7))
        assert driven.accepted, driven.counts()  # the API keeps accepting writes

        def stalled() -> delivery.DeliveryReport | None:
            found = delivery.report(layout, control.status(layout), stall_after_s=2.0)
            return found if any(w.startswith("delivery stalled") for w in found.warnings) else None

        found = wait_for(stalled, 60, "the stall warning")
        assert (found.outbox_pending or 0) >= 2 * len(driven.accepted)
        assert any(u.startswith("kafka") for u in found.unreadable)  # the frozen broker answers nobody
        assert cli.main(["sandbox", "--dir", str(layout.root), "status", "--stall-after", "2"]) == 0
        assert "warning: delivery stalled" in capsys.readouterr().out
    finally:
        os.kill(frozen, signal.SIGCONT)

    def cleared() -> delivery.DeliveryReport | None:
        found = delivery.report(layout, control.status(layout), stall_after_s=2.0)
        return found if found.outbox_pending == 0 and not found.warnings and not found.unreadable else None

    found = wait_for(cleared, 120, "deliveries to resume and the warning to clear")
    assert [g.group for g in found.groups] == ["audit"]
    assert wait_for_delivery(layout.root, driven.accepted, timeout_s=120).missing_actions == []
    assert cli.main(["sandbox", "--dir", str(layout.root), "status", "--json", "--stall-after", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["delivery"]["warnings"] == []


def wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")

