"""SC-007 on the whole sandbox, scaled down in time: the broker becomes unreachable for a while, then
comes back. The API keeps answering, nothing is lost, every service recovers by itself and the
consumers catch up.

The broker is frozen with SIGSTOP rather than killed: its port stays open and every request hangs,
which is what a network partition or a stalled broker looks like to clients (the harder case:
nothing fails fast). This test owns its sandbox, since freezing the broker would disturb others.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Sandbox, _cli, running_sandbox
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.broker]
OUTAGE_S = 10
USER = "outage-user"


@pytest.fixture
def own_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("outage") / "sandbox") as running:
        yield running


def status(sandbox: Sandbox) -> dict:
    answer = _cli(sandbox.env, "status", "--json", timeout=90)  # a Python start plus probes; slow on a loaded CI machine
    return json.loads(answer.stdout)


def test_a_broker_outage_loses_nothing_and_everything_recovers(own_sandbox: Sandbox) -> None:
    sandbox = own_sandbox
    broker_pid = status(sandbox)["broker"]["pid"]
    with sandbox.client(USER) as api:
        recurring = api.post("/tasks", json={"title": "daily", "due_at": "2027-01-04T09:00:00Z",
                                             "recurrence_rule": "FREQ=DAILY;COUNT=3"}).json()
        os.kill(broker_pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            created = []
            for n in range(4):
                answer = api.post("/tasks", json={"title": f"during outage {n}", "due_at": "2027-01-05T09:00:00Z"})
                assert answer.status_code == 201, answer.text
                created.append(answer.json()["id"])
            assert api.post(f"/tasks/{recurring['id']}/complete").status_code == 200
            assert time.monotonic() - started < 5, "the API must keep answering while Kafka is down"
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - started)))
        finally:
            os.kill(broker_pid, signal.SIGCONT)

        # The worker catches up: the series' second instance appears.
        def next_instance() -> dict | None:
            items = api.get("/tasks", params={"status": "pending", "limit": 200}).json()["items"]
            return next((t for t in items if t["series_id"] == recurring["id"] and t["occurrence_index"] == 2), None)

        second = wait_until(next_instance, 90, 0.5, "the next instance after the outage")

    # Audit holds every action exactly once per topic: 1 + 4 creates, 1 completion and the worker's
    # create, each on task-events, task-updates and reminders (every one of these tasks has a due date).
    audit = f"{sandbox.urls['audit']}/api/audit"

    def entries() -> list[dict]:
        answer = httpx.get(audit, params={"limit": 200}, headers=sandbox.headers(USER), timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    found = wait_until(lambda: len(entries()) >= 21 and entries(), 90, 0.5, "21 audit entries")
    assert len(found) == 21
    assert len({(e["topic"], e["event_id"]) for e in found}) == 21
    audited_tasks = {e["entity_id"] for e in found}
    assert audited_tasks == {recurring["id"], second["id"], *created}

    # Every process is ready again without anyone touching it.
    wait_until(lambda: all(p["ready"] for p in status(sandbox)["processes"].values()), 60, 1, "all ready")
