"""Readiness as kubelet judges it, and the loopback ports the sandbox picks for its processes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from console.sandbox import ports
from console.sandbox.plan import ProcessSpec
from console.sandbox.procs import ManagedProcess
from console.sandbox.supervisor import READY_FAILURE_THRESHOLD, Child, Supervisor


def child(tmp_path: Path) -> Child:
    return Child(ManagedProcess(ProcessSpec(name="svc", argv=["true"]), tmp_path / "svc.log"))


def test_one_slow_probe_does_not_make_a_ready_process_unready(tmp_path: Path) -> None:
    svc = child(tmp_path)
    Supervisor.record_readiness(svc, True, running=True)
    first_ready_at = svc.ready_at
    for _ in range(READY_FAILURE_THRESHOLD - 1):
        Supervisor.record_readiness(svc, False, running=True)
        assert svc.ready
    Supervisor.record_readiness(svc, True, running=True)
    assert svc.ready
    assert svc.ready_at == first_ready_at
    assert svc.ready_failures == 0


def test_failure_threshold_in_a_row_makes_it_unready_and_it_comes_back(tmp_path: Path) -> None:
    svc = child(tmp_path)
    Supervisor.record_readiness(svc, True, running=True)
    for _ in range(READY_FAILURE_THRESHOLD):
        Supervisor.record_readiness(svc, False, running=True)
    assert not svc.ready
    Supervisor.record_readiness(svc, True, running=True)
    assert svc.ready
    assert svc.ready_failures == 0


def test_a_process_that_is_not_running_is_unready_at_once(tmp_path: Path) -> None:
    svc = child(tmp_path)
    Supervisor.record_readiness(svc, True, running=True)
    Supervisor.record_readiness(svc, False, running=False)
    assert not svc.ready


def test_never_ready_until_it_answers(tmp_path: Path) -> None:
    svc = child(tmp_path)
    Supervisor.record_readiness(svc, False, running=True)
    assert not svc.ready
    assert not svc.seen_ready
    assert svc.ready_at is None


def test_free_ports_are_below_the_ephemeral_range_and_bindable() -> None:
    low, _ = ports.ephemeral_range()
    picked = {ports.free_port() for _ in range(50)}
    assert all(ports.LOWEST_PICKED_PORT <= p < low for p in picked)
    assert len(picked) > 40  # random, not one port over and over
    for port in list(picked)[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_is_never_handed_out_twice_before_it_is_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three picks for one plan (broker, sidecar, app) must differ even though none is bound yet."""
    first = ports.free_port()
    draws = iter([first, first, first + 1 if first + 1 < ports.ephemeral_range()[0] else first - 1])
    monkeypatch.setattr(ports.random, "randint", lambda *_: next(draws))
    second = ports.free_port()
    assert second != first
    assert ports.port_is_free(first)


def test_a_taken_port_is_not_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not ports.port_is_free(sock.getsockname()[1])


@pytest.mark.parametrize("content", ["", "garbage", "1 2 3"])
def test_unreadable_ephemeral_range_falls_back_to_linux_default(
        content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ip_local_port_range"
    fake.write_text(content)
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", fake)
    assert ports.ephemeral_range() == (32768, 60999)
