"""`down` waits for a supervisor that makes progress, kills only one that stopped making any, and says which.

The supervisor writes each shutdown step to state.json as it begins and rewrites the file every 0.5 s
while stopping; `down` treats a file that stopped changing as a hang. Both sides are real: the detached
supervisor, a real broker and stand-in processes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from console.sandbox.plan import Plan
from console.sandbox.procs import pid_alive

from .conftest import start_sandbox

pytestmark = pytest.mark.broker


def test_a_slow_shutdown_is_waited_for_not_killed(tiny_plan: Callable[..., Plan]) -> None:
    """The service ignores SIGTERM, so stopping it takes the whole 5 s grace: longer than the stall limit
    given here, yet the supervisor shows progress throughout and finishes the job itself."""
    plan = tiny_plan()
    plan.processes[1].argv.append("--ignore-term")
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    steps: list[str] = []
    result = control.down(layout, stall_s=2.0, report=steps.append)
    assert result.supervisor == "stopped", result
    assert result.seconds >= 4.5  # the grace period really ran
    assert result.leftovers == []
    assert steps == ["stopping the services and sidecars", "stopping the broker"]
    final = control.read_state(layout) or {}
    assert final["phase"] == "stopped"
    assert final["error"] is None
    assert [s["step"] for s in final["shutdown"]] == steps
    assert not pid_alive(state["processes"]["shop"]["pgid"])


def test_a_hung_supervisor_is_killed_and_the_state_says_so(tiny_plan: Callable[..., Plan]) -> None:
    plan = tiny_plan()
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    os.kill(state["supervisor_pid"], signal.SIGSTOP)  # alive, but does nothing at all: a hang
    started = time.monotonic()
    result = control.down(layout, stall_s=2.0)
    assert result.supervisor == "stuck"
    assert result.stuck_at == "starting to stop"
    assert time.monotonic() - started < 30
    assert not pid_alive(state["supervisor_pid"])
    assert set(result.leftovers) >= {p["pgid"] for p in state["processes"].values()}
    for proc in state["processes"].values():
        assert not pid_alive(proc["pgid"])
    final = control.read_state(layout) or {}
    assert final["phase"] == "stopped"  # never left at `ready` or `stopping`
    assert "no progress for 2s" in final["error"]
    assert control.status(layout)["phase"] == "stopped"
