"""`rollout`, `pods` and `resources` on the sandbox: its processes stand in for pods and Deployments.

One real sandbox (supervisor, tansu, a tiny service and sidecar pair) carries the end-to-end test; how
the supervisor's state maps to rollouts and pods is checked on crafted states beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console import cli
from console.model.rollout import RolloutState
from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from console.sandbox.plan import Plan
from console.sources.sandbox import _pod, _rollout

from .conftest import start_sandbox


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
@pytest.mark.broker
def test_rollout_pods_and_resources_on_a_running_sandbox(tmp_path: Path, tiny_plan: Callable[..., Plan],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    plan = tiny_plan()
    layout = SandboxLayout(Path(plan.dir))
    start_sandbox(layout, plan)
    where = ("--sandbox", str(layout.root))
    try:
        code, out, _ = run(capsys, "rollout", "status", *where)
        assert code == 0
        assert out.splitlines()[1].split()[:5] == ["shop", "complete", "1/1", "1", "1"]

        code, out, _ = run(capsys, "pods", *where)
        assert code == 0
        assert out.splitlines()[1].split()[:4] == ["shop", "2/2", "Running", "0"]
        code, out, _ = run(capsys, "pods", "shop", *where)
        assert "Readiness:      http-get http://127.0.0.1:" in out
        assert "/readyz delay=0s timeout=1s" in out

        old_pid = control.status(layout)["processes"]["shop"]["pid"]
        code, out, _ = run(capsys, "rollout", "restart", "shop", "--yes", "--json", *where)
        doc = json.loads(out)
        assert (code, doc["kind"], doc["finished"], doc["rollouts"][0]["state"]) == (0, "rollout-restart", True,
                                                                                     "complete")
        assert f"pid {old_pid} stopped" in doc["detail"]
        after = control.status(layout)["processes"]["shop"]
        assert (after["ready"], after["restarts"]) == (True, 1)
        assert after["pid"] != old_pid
        assert control.status(layout)["processes"]["shop-dapr"]["restarts"] == 0  # the sidecar kept running

        code, _, err = run(capsys, "rollout", "history", "shop", *where)
        assert code == 2
        assert "the sandbox has no revisions" in err
        code, _, err = run(capsys, "rollout", "undo", "shop", "--yes", *where)
        assert code == 2
        assert "the sandbox has no revisions" in err

        code, out, _ = run(capsys, "resources", "--json", *where)
        resources = {(r["kind"], r["name"]): r for r in json.loads(out)["resources"]}
        assert {n for k, n in resources if k == "KafkaTopic"} == {"orders", "payments", "orders-dlq"}
        assert resources[("KafkaTopic", "orders")]["partitions"] == 3
        assert resources[("Kafka", "broker (memory)")]["ready"] is True
        # The fixture's Subscription names a pub/sub Component the fixture never declares: nothing would arrive.
        assert resources[("Subscription", "shop-orders")]["state"] == "Broken"
        assert code == 1
    finally:
        control.down(layout)
    code, _, err = run(capsys, "rollout", "status", *where)
    assert code == 2
    assert err.strip().endswith("not running (stopped): `todo-console sandbox up`")


def process(kind: str, *, ready: bool = True, running: bool = True, restarts: int = 0,
            last_exit: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "name": "worker" if kind == "service" else "worker-dapr", "app_id": "worker",
            "pid": 4242 if running else None, "running": running, "ready": ready, "restarts": restarts,
            "last_exit": last_exit, "started_at": 1_700_000_000.0}


@pytest.mark.parametrize(("app", "state", "pod_status", "problem"), [
    (process("service"), RolloutState.COMPLETE, "Running", False),
    (process("service", ready=False), RolloutState.PROGRESSING, "NotReady", False),
    (process("service", ready=False, running=False, restarts=1, last_exit=1), RolloutState.PROGRESSING,
     "Restarting", False),
    (process("service", ready=False, running=False, restarts=5, last_exit=1), RolloutState.DEGRADED,
     "CrashLoopBackOff", True),
])
def test_supervisor_state_as_rollout_and_pod(app: dict[str, Any], state: RolloutState, pod_status: str,
                                             problem: bool) -> None:
    procs = {"app": app, "daprd": process("sidecar")}
    rollout = _rollout("worker", procs)
    assert rollout.state is state
    assert rollout.problem is problem
    pod = _pod("worker", procs, {})
    assert (pod.status, pod.problem) == (pod_status, problem)
    assert [c.name for c in pod.containers] == ["app", "daprd"]
    if problem:
        assert pod.problem_reason == "app: exits and is restarted (5 restarts, last exit 1)"


def test_a_process_stopped_by_a_signal() -> None:
    stopped = _pod("worker", {"app": process("service", restarts=1, last_exit=-15), "daprd": process("sidecar")}, {})
    last = stopped.containers[0].last_termination
    assert last is not None
    assert (last.reason, last.exit_code, last.signal) == ("Killed", None, 15)
