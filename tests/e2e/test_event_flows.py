"""The four consumers end to end on the whole sandbox: the real CLI starts tansu, a dev sidecar per
service and every service; tasks go through the backend's API and the outbox relay, events through
Kafka and the sidecars' declarative Subscriptions, exactly as in the cluster."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import Sandbox
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def test_completing_a_recurring_task_creates_the_next_one(sandbox: Sandbox) -> None:
    with sandbox.client("e2e-recur") as api:
        first = api.post("/tasks", json={"title": "Water plants", "due_at": "2027-03-27T08:00:00Z",
                                         "timezone": "Europe/Berlin", "recurrence_rule": "FREQ=DAILY;COUNT=2"})
        assert first.status_code == 201, first.text
        assert api.post(f"/tasks/{first.json()['id']}/complete").status_code == 200

        def series() -> list[dict]:
            items = api.get("/tasks", params={"limit": 50}).json()["items"]
            return sorted((t for t in items if t["series_id"] == first.json()["series_id"]),
                          key=lambda t: t["occurrence_index"])

        tasks = wait_until(lambda: len(series()) == 2 and series(), 30, 0.2, "the next instance")
        # 09:00 Berlin on the day clocks spring forward is 07:00 UTC.
        assert tasks[1]["due_at"] == "2027-03-28T07:00:00Z"
        assert tasks[1]["status"] == "pending"
        # COUNT=2 ends the series: completing the second instance creates nothing more.
        assert api.post(f"/tasks/{tasks[1]['id']}/complete").status_code == 200
        wait_until(lambda: sandbox.log_lines("worker", lambda e: e.get("msg") == "series ended"
                                             and e.get("series_id") == first.json()["series_id"]),
                   timeout=30, interval=0.2, message="the worker's series-ended line")
        assert len(series()) == 2


def test_a_reminder_fires_with_the_correlation_of_the_request_that_set_it(sandbox: Sandbox) -> None:
    correlation_id = f"e2e-{uuid.uuid4().hex[:12]}"
    due = datetime.now(UTC) + timedelta(minutes=10, seconds=2)
    with sandbox.client("e2e-remind") as api:
        created = api.post("/tasks", headers={"X-Correlation-ID": correlation_id}, json={
            "title": "Take the bins out", "due_at": due.isoformat(), "reminder_offset_minutes": 10})
        assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    [line] = wait_until(lambda: sandbox.log_lines("notification", lambda e: e.get("msg") == "reminder due"
                                                  and e.get("notification", {}).get("task_id") == task_id),
                        timeout=40, interval=0.2, message="the reminder log line")
    assert line["correlation_id"] == correlation_id
    assert line["notification"]["title"] == "Take the bins out"
    assert line["notification"]["user_id"] == "e2e-remind"


def test_updates_reach_the_owners_socket_only(sandbox: Sandbox) -> None:
    ws_url = sandbox.urls["ws"]
    with connect(f"{ws_url}?token={sandbox.token('e2e-ws-a')}", open_timeout=10) as mine, \
            connect(f"{ws_url}?token={sandbox.token('e2e-ws-b')}", open_timeout=10) as theirs:
        assert json.loads(mine.recv(timeout=10))["type"] == "ready"
        assert json.loads(theirs.recv(timeout=10))["type"] == "ready"
        with sandbox.client("e2e-ws-a") as api:
            task_id = api.post("/tasks", json={"title": "Live"}).json()["id"]

        def next_event(ws) -> dict:
            while True:
                message = json.loads(ws.recv(timeout=30))
                if message["type"] == "event":
                    return message

        got = next_event(mine)
        assert got["event_type"] == "todo.task.created.v1"
        assert got["data"]["task"]["id"] == task_id
        with pytest.raises(TimeoutError):
            theirs.recv(timeout=2)


def test_every_change_is_audited_once_per_topic(sandbox: Sandbox) -> None:
    correlation_id = f"e2e-{uuid.uuid4().hex[:12]}"
    with sandbox.client("e2e-audit") as api:
        task = api.post("/tasks", headers={"X-Correlation-ID": correlation_id}, json={
            "title": "Audited", "due_at": "2027-01-01T09:00:00Z"}).json()
        assert api.patch(f"/tasks/{task['id']}", headers={"If-Match": '"1"'},
                         json={"title": "Audited twice"}).status_code == 200
        assert api.post(f"/tasks/{task['id']}/complete").status_code == 200

    audit = f"{sandbox.urls['audit']}/api/audit"

    def entries() -> list[dict]:
        answer = httpx.get(audit, params={"entity_id": task["id"], "limit": 100},
                           headers=sandbox.headers("e2e-audit"), timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    # created and completed: task-events + task-updates + reminders; the title edit leaves the reminder
    # alone (issue 15): task-events + task-updates only. The reminders topic has one partition, so once
    # the completion's cancellation is recorded, anything the edit had published there would be too.
    found = wait_until(lambda: len(entries()) >= 8 and entries(), 30, 0.2, "eight audit entries")
    assert sorted((e["topic"], e["action"]) for e in found) == sorted([
        ("task-events", "created"), ("task-updates", "created"), ("reminders", "reminder_scheduled"),
        ("task-events", "updated"), ("task-updates", "updated"),
        ("task-events", "completed"), ("task-updates", "completed"), ("reminders", "reminder_cancelled"),
    ])
    assert len({(e["topic"], e["event_id"]) for e in found}) == 8
    assert {e["correlation_id"] for e in found if e["action"] == "created"} == {correlation_id}
    # Another user sees none of it.
    other = httpx.get(audit, params={"entity_id": task["id"]}, headers=sandbox.headers("e2e-someone"), timeout=10)
    assert other.json()["total"] == 0
