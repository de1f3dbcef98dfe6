"""An apply killed at any point (SIGKILL: no cleanup, no state written) is finished by the next apply,
without duplicates: what exists is found again by its tags, and what is mid-change is waited for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from tests.provisioning.conftest import Provision
from tests.provisioning.oci_standin import Call, OciStandIn
from tests.provisioning.test_cycle import EXPECTED, live_counts

REPO = Path(__file__).resolve().parents[2]


def kill_apply_when(standin: OciStandIn, env: dict[str, str], spec: Path, moment: Callable[[Call], bool]) -> str:
    """Run `provision apply` in a process of its own and SIGKILL it when the stand-in sees `moment`
    (before the stand-in answers that request, so the tool never learns the outcome)."""
    started = threading.Event()
    process: subprocess.Popen[str] | None = None

    def on_call(call: Call) -> None:
        if process is not None and moment(call) and not started.is_set():
            started.set()
            os.kill(process.pid, signal.SIGKILL)

    standin.on_call = on_call
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "provision", "apply", "--config", str(spec)],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = process.communicate(timeout=120)
    finally:
        standin.on_call = None
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, f"apply was not killed (exit {process.returncode}): {err}"
    return err


def test_an_apply_killed_after_making_a_subnet_is_finished_by_the_next(
        provision: Provision, standin: OciStandIn, oci_env: dict[str, str], spec_file: Path) -> None:
    kill_apply_when(standin, oci_env, spec_file, lambda c: c.operation == "create_subnet" and c.status == 200)
    made = live_counts(standin)
    assert made["vcn"] == 1
    assert made["subnet"] == 1  # the tool was killed before it heard back: it does not know the subnet exists
    assert made["cluster"] == 0

    plan = provision("plan", "--json").json()
    actions = {step["key"]: step["action"] for step in plan["steps"]}
    assert actions["subnet-api-endpoint"] == "keep"
    assert actions["subnet-workers"] == "create"

    resumed = provision("apply")
    assert resumed.code == 0, resumed.err
    assert live_counts(standin) == EXPECTED
    assert provision("plan").code == 0


def test_an_apply_killed_while_the_cluster_is_creating_waits_for_it_next_time(
        provision: Provision, standin: OciStandIn, oci_env: dict[str, str], spec_file: Path) -> None:
    standin.cloud.holding = True  # the cluster's work request stays IN_PROGRESS until released below
    kill_apply_when(standin, oci_env, spec_file, lambda c: c.operation == "get_work_request")
    assert len(standin.live("cluster")) == 1

    plan = provision("plan", "--json").json()
    cluster = next(step for step in plan["steps"] if step["key"] == "cluster")
    assert (cluster["action"], cluster["state"]) == ("keep", "CREATING")
    assert next(step for step in plan["steps"] if step["key"] == "node-pool")["action"] == "create"

    def release(call: Call) -> None:
        if call.operation == "list_work_requests":  # the resumed apply looks for the cluster's work request
            standin.cloud.holding = False

    standin.on_call = release
    resumed = provision("apply")
    assert resumed.code == 0, resumed.err
    assert "CREATING: apply waits for it" in resumed.out
    assert standin.count("list_work_requests") == 1
    assert "cluster todo-cluster: SUCCEEDED" in resumed.err  # its work request was followed to the end
    assert standin.count("create_cluster") == 1
    assert live_counts(standin) == EXPECTED
