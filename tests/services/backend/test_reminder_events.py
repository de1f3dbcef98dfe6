"""Exactly the events each task change writes to the outbox: a reminder event only when the reminder changes.

Issue 15: every title edit of a task without a due date published `todo.reminder.cancelled.v1`
(172 edits, 172 events in the audit log). Each step below is one API call and the complete list of
events it wrote, read back from the outbox the relay publishes from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.services.backend.conftest import outbox

Auth = Callable[..., dict[str, str]]
DUE = "2027-03-01T09:00:00+00:00"
MOVED = "2027-03-08T09:00:00+00:00"


class Recorder:
    """Calls the API and returns the events that call wrote, in order."""

    def __init__(self, client: TestClient, auth: Auth) -> None:
        self.client, self.auth = client, auth

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             expect: int = 200) -> tuple[dict[str, Any] | None, list[tuple[str, str, dict]]]:
        before = len(outbox(self.client))
        answer = self.client.request(method, f"/api/tasks{path}", json=body, headers=self.auth())
        assert answer.status_code == expect, answer.text
        return (answer.json() if answer.content else None), outbox(self.client)[before:]

    def create(self, **fields: Any) -> tuple[dict[str, Any], list[tuple[str, str, dict]]]:
        task, written = self.call("POST", "", {"title": "Pay rent", **fields}, expect=201)
        assert task is not None
        return task, written


def task_events(action: str) -> list[tuple[str, str]]:
    return [("task-events", f"todo.task.{action}.v1"), ("task-updates", f"todo.task.{action}.v1")]


def kinds(written: list[tuple[str, str, dict]]) -> list[tuple[str, str]]:
    return [(topic, kind) for topic, kind, _ in written]


def reminder(written: list[tuple[str, str, dict]]) -> dict[str, Any]:
    [data] = [event["data"] for topic, _, event in written if topic == "reminders"]
    return data


def test_creating_schedules_a_reminder_only_for_a_task_with_a_due_date(client: TestClient, auth: Auth) -> None:
    api = Recorder(client, auth)
    _, written = api.create()
    assert kinds(written) == task_events("created")
    task, written = api.create(due_at=DUE, reminder_offset_minutes=30)
    assert kinds(written) == [*task_events("created"), ("reminders", "todo.reminder.scheduled.v1")]
    scheduled = reminder(written)
    assert scheduled["remind_at"].startswith("2027-03-01T08:30:00")
    assert (scheduled["entity_id"], scheduled["task_version"], scheduled["title"]) == (task["id"], 1, "Pay rent")
    # Without an offset the reminder fires at the due time.
    _, written = api.create(due_at=DUE)
    assert reminder(written)["remind_at"].startswith("2027-03-01T09:00:00")


def test_edits_that_leave_the_reminder_alone_publish_no_reminder_event(client: TestClient, auth: Auth) -> None:
    api = Recorder(client, auth)
    undated, _ = api.create()
    for title in ("Pay the rent", "Pay rent now", "Pay rent"):  # the reported case: every edit cancelled
        _, written = api.call("PATCH", f"/{undated['id']}", {"title": title})
        assert kinds(written) == task_events("updated")
    dated, _ = api.create(due_at=DUE, reminder_offset_minutes=15)
    for change in ({"title": "Pay the rent"}, {"description": "to the landlord"}, {"priority": "urgent"},
                   {"tags": ["home"]}, {"timezone": "Europe/Berlin"}, {"recurrence_rule": "FREQ=MONTHLY"}):
        _, written = api.call("PATCH", f"/{dated['id']}", change)
        assert kinds(written) == task_events("updated"), change
    # The same due instant written with another offset changes nothing at all.
    _, written = api.call("PATCH", f"/{dated['id']}", {"due_at": "2027-03-01T10:00:00+01:00"})
    assert written == []


def test_moving_adding_and_removing_the_reminder(client: TestClient, auth: Auth) -> None:
    api = Recorder(client, auth)
    task, _ = api.create(due_at=DUE, reminder_offset_minutes=15)
    path = f"/{task['id']}"

    _, written = api.call("PATCH", path, {"due_at": MOVED})
    assert kinds(written) == [*task_events("updated"), ("reminders", "todo.reminder.scheduled.v1")]
    assert reminder(written)["remind_at"].startswith("2027-03-08T08:45:00")
    assert reminder(written)["task_version"] == 2

    _, written = api.call("PATCH", path, {"reminder_offset_minutes": 60})
    assert kinds(written) == [*task_events("updated"), ("reminders", "todo.reminder.scheduled.v1")]
    assert reminder(written)["remind_at"].startswith("2027-03-08T08:00:00")

    _, written = api.call("PATCH", path, {"reminder_offset_minutes": None, "due_at": None})
    assert kinds(written) == [*task_events("updated"), ("reminders", "todo.reminder.cancelled.v1")]
    assert (reminder(written)["reason"], reminder(written)["task_version"]) == ("reminder_removed", 4)

    _, written = api.call("PATCH", path, {"due_at": DUE})
    assert kinds(written) == [*task_events("updated"), ("reminders", "todo.reminder.scheduled.v1")]
    assert reminder(written)["remind_at"].startswith("2027-03-01T09:00:00")


def test_completing_and_deleting_cancel_only_a_reminder_that_exists(client: TestClient, auth: Auth) -> None:
    api = Recorder(client, auth)
    dated, _ = api.create(due_at=DUE)
    _, written = api.call("POST", f"/{dated['id']}/complete")
    assert kinds(written) == [*task_events("completed"), ("reminders", "todo.reminder.cancelled.v1")]
    assert reminder(written)["reason"] == "completed"
    _, written = api.call("DELETE", f"/{dated['id']}", expect=204)
    assert kinds(written) == task_events("deleted")  # its reminder went with the completion

    pending, _ = api.create(due_at=DUE)
    _, written = api.call("DELETE", f"/{pending['id']}", expect=204)
    assert kinds(written) == [*task_events("deleted"), ("reminders", "todo.reminder.cancelled.v1")]
    assert (reminder(written)["reason"], reminder(written)["entity_id"]) == ("deleted", pending["id"])

    undated, _ = api.create()
    _, written = api.call("POST", f"/{undated['id']}/complete")
    assert kinds(written) == task_events("completed")
    _, written = api.call("DELETE", f"/{undated['id']}", expect=204)
    assert kinds(written) == task_events("deleted")
