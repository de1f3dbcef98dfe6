"""Durable mode end to end: a broker killed under load loses nothing, and a stalled delivery is reported.

One real durable sandbox (tansu on the local S3, the backend and the audit service with their dev
sidecars) serves both tests. Every write carries its own correlation id, so "every action answered
2xx reaches the audit log exactly once" is checked action by action (tests/bench/delivery_load.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from console import cli
from console.sandbox import control, delivery
from console.sandbox.layout import SandboxLayout
from console.sandbox.s3 import stored_batches
from tests.bench.delivery_load import drive, wait_for_delivery
from tests.utils.waiting import wait_until

from .conftest import diagnose, require_tansu

pytestmark = [pytest.mark.slow, pytest.mark.broker]  # one real durable sandbox, ~35 s on a quiet machine


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


def test_a_frozen_broker_is_reported_as_a_stall_then_clears(durable: tuple[SandboxLayout, str, str]) -> None:
    """SIGSTOP: the broker stays alive to the supervisor but answers nobody, so publishing stalls while the
    API keeps accepting writes. Resumed well within the sidecar's 10 s publish timeout (a longer freeze
    trips the publish circuit breaker and only delays the drain), so the test costs seconds."""
    layout, api, secret = durable
    frozen = broker_pid(layout)
    os.kill(frozen, signal.SIGSTOP)
    try:
        driven = asyncio.run(drive(api, secret, rate=5, seconds=1, seed=7))
        assert driven.accepted, driven.counts()  # the API keeps accepting writes
        found = wait_until(lambda: warned(layout, "delivery stalled"), 60, 0.5, "the outbox stall warning")
        assert (found.outbox_pending or 0) >= 2 * len(driven.accepted)
        assert (found.outbox_oldest_s or 0) > STALL_AFTER_S
        assert any(u.startswith("kafka") for u in found.unreadable)  # reported as unread, not as "no lag"
    finally:
        os.kill(frozen, signal.SIGCONT)
    found = wait_until(lambda: cleared(layout), 120, 0.5, "deliveries to resume and the warning to clear")
    assert [g.group for g in found.groups] == ["audit"]
    assert wait_for_delivery(layout.root, driven.accepted, timeout_s=120).missing_actions == []


def test_a_frozen_consumer_is_reported_by_status_then_clears(durable: tuple[SandboxLayout, str, str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The audit service frozen: the backend publishes, but the audit group's lag grows and its oldest
    record ages; `sandbox status` says so, and stops saying it once the consumer catches up. (Liveness
    would restart it only after 3 failed probes 10 s apart, 30 s, as the manifests say: longer than the freeze.)"""
    layout, api, secret = durable
    audit = (control.read_state(layout) or {})["processes"]["audit"]["pgid"]
    os.killpg(audit, signal.SIGSTOP)
    try:
        driven = asyncio.run(drive(api, secret, rate=5, seconds=1, seed=11))
        found = wait_until(lambda: warned(layout, "consumer audit is"), 60, 0.5, "the consumer stall warning")
        assert not any(w.startswith("delivery stalled") for w in found.warnings)  # publishing goes on
        lagging = [g for g in found.groups if g.group == "audit"]
        assert lagging
        assert lagging[0].lag > 0
        assert status(layout, capsys) == 0
        out = capsys.readouterr().out
        assert re.search(r"^  consumer audit +lag [1-9]\d*, oldest \S+$", out, re.MULTILINE), out
        assert re.search(r"^warning: consumer audit is [1-9]\d* event\(s\) behind", out, re.MULTILINE), out
    finally:
        os.killpg(audit, signal.SIGCONT)
    wait_until(lambda: cleared(layout), 120, 0.5, "the consumer to catch up and the warning to clear")
    assert wait_for_delivery(layout.root, driven.accepted, timeout_s=120).missing_actions == []

    def clean_status() -> dict[str, Any] | None:
        """What `status --json` reports, once it is clean. `cleared` passes on one look, and lag younger
        than the stall threshold is no warning: the thawed consumer may still be working through its backlog
        then (seen: 2 behind, 1 s), and what it handled is committed a moment later, as daprd's consumer
        commits its marked offsets every second."""
        assert status(layout, capsys, "--json") == 0
        reported: dict[str, Any] = json.loads(capsys.readouterr().out)["delivery"]
        lags = [(g["group"], g["lag"]) for g in reported["groups"]]
        return reported if (reported["warnings"], reported["outbox_pending"], lags) == ([], 0, [("audit", 0)]) \
            else None
    wait_until(clean_status, 60, 0.5, "status --json to report no warning, an empty outbox and the audit caught up")


def test_a_long_partition_is_reported_with_how_to_start_the_storage_afresh(
        durable: tuple[SandboxLayout, str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """tansu never trims a durable partition and lists it whole on every fetch: `sandbox status` names the
    longest one and, past the limit (lowered here to what the earlier tests stored), says how to reset."""
    layout, api, secret = durable
    driven = asyncio.run(drive(api, secret, rate=5, seconds=1, seed=13))  # something stored, whatever ran before
    assert wait_for_delivery(layout.root, driven.accepted, timeout_s=120).missing_actions == []  # all published
    batches = stored_batches(layout.s3_data)
    longest = max(batches.values())
    found = report(layout)
    assert (found.longest_partition, found.longest_partition_batches) in batches.items()
    assert found.longest_partition_batches == longest
    assert not any(w.startswith("partition ") for w in found.warnings)  # far below the real limit
    monkeypatch.setattr(delivery, "LONG_PARTITION_BATCHES", longest - 1)
    assert status(layout, capsys) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^warning: partition \S+/\d+ holds {longest:,} stored batches: .* delete "
                     rf"{re.escape(str(layout.s3_data))}/", out, re.MULTILINE), out
    assert re.search(rf"^  longest partition \S+/\d+: {longest:,} stored batches$", out, re.MULTILINE), out


STALL_AFTER_S = 1.0


def report(layout: SandboxLayout) -> delivery.DeliveryReport:
    # A 1 s timeout keeps each look short while the broker is frozen.
    return delivery.report(layout, control.status(layout), stall_after_s=STALL_AFTER_S, timeout_s=1.0)


def warned(layout: SandboxLayout, prefix: str) -> delivery.DeliveryReport | None:
    found = report(layout)
    return found if any(w.startswith(prefix) for w in found.warnings) else None


def cleared(layout: SandboxLayout) -> delivery.DeliveryReport | None:
    found = report(layout)
    return found if found.outbox_pending == 0 and not found.warnings and not found.unreadable else None


def status(layout: SandboxLayout, capsys: pytest.CaptureFixture[str], *flags: str) -> int:
    capsys.readouterr()
    return cli.main(["sandbox", "--dir", str(layout.root), "status", "--stall-after", str(STALL_AFTER_S), *flags])
