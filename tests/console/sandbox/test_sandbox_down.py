"""`down` waits for a supervisor that makes progress, kills only one that stopped making any, and says which.

The supervisor writes each shutdown step to state.json as it begins and rewrites the file every 0.5 s
while stopping; `down` treats a file that stopped changing as a hang. Both sides are real: the detached
supervisor, a real broker and stand-in processes. Whatever happened, state.json ends at `stopped` (never
`ready` or `stopping`), and `sandbox down` prints that, and only that.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console import cli
from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from console.sandbox.plan import Plan
from console.sandbox.procs import pid_alive
from tests.utils.waiting import wait_until

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


def test_a_supervisor_stuck_half_way_is_killed_and_the_state_says_where(tiny_plan: Callable[..., Plan]) -> None:
    """The supervisor freezes in the middle of its shutdown, state.json at `stopping`: `down` kills it once
    nothing has changed for the stall limit, stops what it left, and records `stopped` with the step."""
    plan = tiny_plan()
    plan.processes[1].argv.append("--ignore-term")  # the first step lasts its whole 5 s grace
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    supervisor = state["supervisor_pid"]
    seen: list[str] = []

    def freeze_at_first_step(step: str) -> None:
        if not seen:
            os.kill(supervisor, signal.SIGSTOP)
            seen.append((control.read_state(layout) or {})["phase"])

    result = control.down(layout, stall_s=2.0, report=freeze_at_first_step)
    assert seen == ["stopping"]  # the state file really was half-way
    assert result.supervisor == "stuck", result
    assert result.stuck_at == "stopping the services and sidecars"
    assert not pid_alive(supervisor)
    # The service ignoring SIGTERM was still in its grace period: `down` stopped it (the sidecar had gone).
    assert state["processes"]["shop"]["pgid"] in result.leftovers
    for proc in state["processes"].values():
        assert not pid_alive(proc["pgid"])
    final = control.read_state(layout) or {}
    assert final["phase"] == "stopped"
    assert final["error"] == ("the supervisor made no progress for 2s while stopping the services and sidecars; "
                              "`down` killed it")
    assert control.status(layout)["phase"] == "stopped"


# --- what `todo-console sandbox down` prints: what happened, nothing else ------------------------------


def cli_down(layout: SandboxLayout, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert cli.main(["sandbox", "--dir", str(layout.root), "down"]) == 0
    return capsys.readouterr().out.splitlines()


def group_count(state: dict[str, Any]) -> int:
    """The process groups a sandbox holds: one per process, and the broker's."""
    return len(state["processes"]) + 1


def test_cli_down_of_a_healthy_sandbox_lists_its_steps(tiny_plan: Callable[..., Plan],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    plan = tiny_plan()
    layout = SandboxLayout(Path(plan.dir))
    start_sandbox(layout, plan)
    out = cli_down(layout, capsys)
    assert [line.split("s  ", 1)[1] for line in out[:-1]] == ["stopping the services and sidecars",
                                                               "stopping the broker"]
    assert re.fullmatch(rf"sandbox stopped in \d+\.\ds \({re.escape(str(layout.root))}\)", out[-1])
    final = control.read_state(layout) or {}
    assert (final["phase"], final["error"]) == ("stopped", None)


def test_cli_down_of_a_hung_supervisor_says_it_killed_it(tiny_plan: Callable[..., Plan],
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "DOWN_STALL_S", 2.0)
    plan = tiny_plan()
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    os.kill(state["supervisor_pid"], signal.SIGSTOP)  # alive, but does nothing at all: a hang
    out = cli_down(layout, capsys)
    assert out[:-1] == [f"the supervisor made no progress for 2s while starting to stop: killed it; "
                        f"stopped {group_count(state)} leftover process group(s)"]
    assert out[-1].startswith("sandbox stopped in ")
    assert not pid_alive(state["supervisor_pid"])
    final = control.read_state(layout) or {}
    assert final["phase"] == "stopped"  # never left at `ready` or `stopping`
    assert "no progress for 2s while starting to stop" in final["error"]


def test_cli_down_after_the_supervisor_died_says_so(tiny_plan: Callable[..., Plan],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    plan = tiny_plan()
    layout = SandboxLayout(Path(plan.dir))
    state = start_sandbox(layout, plan)
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(state["supervisor_pid"]), 10, message="the supervisor gone")
    assert (control.read_state(layout) or {})["phase"] == "ready"  # what the dead supervisor left behind
    out = cli_down(layout, capsys)
    assert out[:-1] == [f"the supervisor was not running; stopped {group_count(state)} leftover process group(s)"]
    final = control.read_state(layout) or {}
    assert (final["phase"], final["error"]) == ("stopped", "the supervisor was gone")
    assert all(p["pid"] is None for p in final["processes"].values())
    for proc in state["processes"].values():
        assert not pid_alive(proc["pgid"])
