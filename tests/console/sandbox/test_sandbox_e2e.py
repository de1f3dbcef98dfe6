"""The real system end to end, as a new user meets it: the quick start's `sandbox up`, a task through
the API, its events delivered, a crashed sidecar restarted, then the README's next block pasted as it
is, which ends with `down`.

Runs the real CLI in subprocesses (as `.venv/bin/todo-console` in a directory laid out as a clone),
the real services, the real dev sidecars and tansu.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import TopicPartition

from console.sandbox import monitoring
from console.sandbox.layout import REPO_ROOT, SandboxLayout
from console.sandbox.ports import port_is_free
from console.sandbox.procs import pid_alive
from console.sandbox.topics import admin_client
from tests.docs.readme import NEXT_BLOCK, UP_COMMAND, bash, json_documents, make_checkout

from .conftest import diagnose, require_tansu

pytestmark = [pytest.mark.slow, pytest.mark.broker]

REQUIRED_SERVICES = ("backend", "worker", "audit")
CLI = [sys.executable, "-m", "console.cli"]  # what the `todo-console` entry point runs


def sandbox(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "sandbox", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def wait_for_log(path: Path, *needles: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if all(n in line for n in needles):
                    return line
        time.sleep(0.2)
    raise AssertionError(f"no line with {needles} in {path} after {timeout}s")


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    admin = admin_client(bootstrap)
    try:
        offsets = admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, p) for p in range(partitions)])
    finally:
        admin.close()
    return sum(max(o.offset, 0) for o in offsets.values())


def test_quick_start_events_delivered_then_the_readmes_next_block(tmp_path: Path) -> None:
    require_tansu()
    checkout = make_checkout(tmp_path)
    layout = SandboxLayout(checkout / ".sandbox")
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "DATABASE_URL", "API", "TOKEN")}
    env.update({"TODO_SANDBOX_DIR": str(layout.root), "TODO_SANDBOX_PORT_BASE": "0"})

    up = bash(UP_COMMAND, checkout, env, timeout=180)
    state: dict[str, Any] = {}
    readme = None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Traceback" not in up.stderr
        api = re.search(r"^api\s+(\S+)$", up.stdout, re.MULTILINE)
        token = re.search(r"^dev token\s+(\S+)$", up.stdout, re.MULTILINE)
        assert api, up.stdout
        assert token, up.stdout
        # What `up` says to run next is the README's next block's first line.
        assert f"next: {NEXT_BLOCK.splitlines()[0].split('  #', 1)[0].strip()}" in up.stdout, up.stdout
        # Each step is printed as it happens, with the seconds since `up` began.
        steps = re.findall(r"^ +\d+\.\ds  (.+)$", up.stdout, re.MULTILINE)
        assert steps[0].startswith("broker 127.0.0.1:"), up.stdout
        assert steps[1] == "topics: 7 created, 0 already there (kustomize/base)", up.stdout
        prometheus = r"^prometheus\s+http://127\.0\.0\.1:\d+$" if monitoring.prometheus_binary() else \
            r"^prometheus\s+not running: no `prometheus` on PATH"
        assert re.search(prometheus, up.stdout, re.MULTILINE), up.stdout

        status = sandbox(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        state = json.loads(status.stdout)
        assert state["phase"] == "ready"
        assert state["broker"]["alive"]
        unwell = {n: p for n, p in state["processes"].items() if not p["ready"] or p["restarts"]}
        assert not unwell, diagnose(layout, unwell)
        for name in REQUIRED_SERVICES:
            assert state["processes"][name]["ready"]
            assert state["processes"][f"{name}-dapr"]["ready"]
        ready = [name for step in steps if step.startswith("ready: ") for name in step[7:].split(", ")]
        started = [name for step in steps if step.startswith("started: ") for name in step[9:].split(", ")]
        assert sorted(ready) == sorted(started) == sorted(state["processes"]), up.stdout
        for name in state["absent"]:
            assert f"not in the sandbox yet: {name} (it joins once services/{name}/main.py exists)" in up.stdout

        resp = httpx.post(f"{api.group(1)}/tasks", json={"title": "sandbox end-to-end"},
                          headers={"Authorization": f"Bearer {token.group(1)}"}, timeout=10)
        assert resp.status_code == 201, resp.text
        task_id = str(resp.json()["id"])

        # The outbox relay publishes through the backend's sidecar; the consumers' sidecars deliver.
        # The event's subject is the task id, and consumers log it with each handled event.
        assert wait_for_log(layout.log("worker"), "event handled", "task-events", task_id)
        assert wait_for_log(layout.log("audit"), "event handled", "task-events", task_id)
        bootstrap = state["broker"]["bootstrap"]
        deadline = time.monotonic() + 30
        while committed(bootstrap, "worker", "task-events", 3) == 0 or committed(
                bootstrap, "audit", "task-events", 3) == 0:
            assert time.monotonic() < deadline, "no committed offsets for worker/audit on task-events"
            time.sleep(0.5)

        # A sidecar killed -9 comes back (kubelet-style), counted, and its app stays served.
        os.kill(state["processes"]["worker-dapr"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            now = json.loads(sandbox(env, "status", "--json").stdout)["processes"]["worker-dapr"]
            if now["restarts"] == 1 and now["ready"]:
                break
            assert time.monotonic() < deadline, f"worker-dapr not restarted: {now}"
            time.sleep(0.5)

        # The README's next block, verbatim; any failing line fails it (curl -f: any HTTP error).
        readme = bash(NEXT_BLOCK, checkout, env, timeout=240)  # a dozen commands, each starting Python
        assert readme.returncode == 0, f"{readme.stdout}\n{readme.stderr}"
    finally:
        if readme is None or readme.returncode != 0:
            sandbox(env, "down", timeout=60)
    documents, rest = json_documents(readme.stdout)
    listed, completed, everyones, refused, *logs = documents
    assert sorted(task["title"] for task in listed["items"]) == ["Water plants", "sandbox end-to-end"]
    water = next(task for task in listed["items"] if task["title"] == "Water plants")
    assert (completed["id"], completed["status"]) == (water["id"], "completed")
    # `sandbox token --user ops --scope audit:read`: ops sees dev-user's audit entries; dev-user's token
    # asking for ops's gets a 403 problem.
    assert everyones["total"] >= 2
    assert {entry["user_id"] for entry in everyones["items"]} == {"dev-user"}
    assert (refused["status"], refused["detail"]) == (403, "other users' entries need scope 'audit:read'")
    assert {record["process"] for record in logs} == {"backend", "backend-dapr"}  # `logs backend --json`
    requests = [r for r in logs if r["process"] == "backend" and r.get("msg") == "request"]
    assert requests, logs
    assert all(r["correlation_id"] for r in requests)
    assert rest.strip().splitlines()[-1].startswith("sandbox stopped in ")  # the block ends with `down`
    assert "Traceback" not in readme.stderr

    for proc in state.get("processes", {}).values():
        assert not pid_alive(proc["pgid"])
        assert all(port_is_free(p) for p in proc["ports"])
    if state:
        assert not pid_alive(state["supervisor_pid"])
        assert not pid_alive(state["broker"]["pid"])
