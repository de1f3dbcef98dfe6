"""The task API on SQLite and on PostgreSQL: the happy paths and what each change publishes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.services.backend.conftest import outbox

Auth = Callable[..., dict[str, str]]
DUE = "2026-12-01T09:00:00+01:00"


def create(client: TestClient, auth: Auth, user: str = "alice", **fields: object) -> dict:
    body = {"title": "Write report", **fields}
    response = client.post("/api/tasks", json=body, headers=auth(user))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_get_list_update_complete_delete(client: TestClient, auth: Auth) -> None:
    created = create(client, auth, description="Q4", priority="high", tags=["work"], due_at=DUE,
                     timezone="Europe/Berlin", reminder_offset_minutes=30)
    assert created["owner_id"] == "alice"
    assert created["status"] == "pending"
    assert created["version"] == 1
    assert created["due_at"].startswith("2026-12-01T08:00:00")  # stored and returned in UTC
    got = client.get(f"/api/tasks/{created['id']}", headers=auth())
    assert got.status_code == 200
    assert got.headers["etag"] == '"1"'
    assert got.json() == created

    updated = client.patch(f"/api/tasks/{created['id']}", json={"title": "Write Q4 report"},
                           headers={**auth(), "If-Match": '"1"'})
    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    assert updated.headers["etag"] == '"2"'

    completed = client.post(f"/api/tasks/{created['id']}/complete", headers=auth())
    assert completed.json()["status"] == "completed"
    assert completed.json()["completed_at"]

    listed = client.get("/api/tasks", headers=auth()).json()
    assert listed["total"] == 1
    assert listed["items"][0]["title"] == "Write Q4 report"

    assert client.delete(f"/api/tasks/{created['id']}", headers=auth()).status_code == 204
    assert client.get(f"/api/tasks/{created['id']}", headers=auth()).status_code == 404


def test_each_change_writes_its_events_in_one_transaction(client: TestClient, auth: Auth) -> None:
    task = create(client, auth, due_at=DUE, reminder_offset_minutes=15, recurrence_rule="FREQ=WEEKLY;BYDAY=MO",
                  timezone="Europe/Berlin")
    client.patch(f"/api/tasks/{task['id']}", json={"priority": "low"}, headers=auth())
    client.post(f"/api/tasks/{task['id']}/complete", headers=auth())
    client.delete(f"/api/tasks/{task['id']}", headers=auth())
    events = outbox(client)
    assert [(topic, kind) for topic, kind, _ in events] == [
        ("task-events", "todo.task.created.v1"), ("task-updates", "todo.task.created.v1"),
        ("reminders", "todo.reminder.scheduled.v1"),
        # a priority change does not move the reminder: no reminders event
        ("task-events", "todo.task.updated.v1"), ("task-updates", "todo.task.updated.v1"),
        ("task-events", "todo.task.completed.v1"), ("task-updates", "todo.task.completed.v1"),
        ("reminders", "todo.reminder.cancelled.v1"),
        # the reminder went with the completion: deleting the task cancels nothing more
        ("task-events", "todo.task.deleted.v1"), ("task-updates", "todo.task.deleted.v1"),
    ]
    _, _, scheduled = events[2]
    assert scheduled["data"]["remind_at"].startswith("2026-12-01T07:45:00")
    _, _, completed = events[5]
    assert completed["subject"] == task["id"]
    assert completed["specversion"] == "1.0"
    assert completed["data"]["user_id"] == "alice"
    assert completed["data"]["action"] == "completed"
    recurrence = completed["data"]["task"]["recurrence"]
    assert recurrence == {"rule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "Europe/Berlin", "series_id": task["id"],
                          "series_start": recurrence["series_start"], "occurrence_index": 1}
    assert len({e["id"] for _, _, e in events}) == len(events)


def test_events_carry_the_request_correlation_id(client: TestClient, auth: Auth) -> None:
    response = client.post("/api/tasks", json={"title": "traced"},
                           headers={**auth(), "X-Correlation-ID": "req-42"})
    assert response.headers["x-correlation-id"] == "req-42"
    assert {e["correlationid"] for _, _, e in outbox(client)} == {"req-42"}


def test_traceparent_gives_the_correlation_id_when_no_header(client: TestClient, auth: Auth) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client.post("/api/tasks", json={"title": "traced"},
                headers={**auth(), "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    events = outbox(client)
    assert {e["correlationid"] for _, _, e in events} == {trace_id}
    assert all(e["traceparent"].split("-")[1] == trace_id for _, _, e in events)


def test_list_filters_sorts_and_paginates(client: TestClient, auth: Auth) -> None:
    ids = [create(client, auth, title=f"t{i}", due_at=f"2026-12-0{i}T10:00:00+00:00",
                  priority=["low", "urgent", "medium", "high"][i - 1], tags=["a"] if i % 2 else ["b"])["id"]
           for i in range(1, 5)]
    client.post(f"/api/tasks/{ids[0]}/complete", headers=auth())
    create(client, auth, "bob", title="not alice's")

    def titles(**params: object) -> list[str]:
        response = client.get("/api/tasks", params=params, headers=auth())
        assert response.status_code == 200, response.text
        return [t["title"] for t in response.json()["items"]]

    assert titles(sort="-due_at") == ["t4", "t3", "t2", "t1"]
    assert titles(sort="-priority") == ["t2", "t4", "t3", "t1"]
    assert titles(status="pending", sort="due_at") == ["t2", "t3", "t4"]
    assert titles(status="completed") == ["t1"]
    assert titles(due_after="2026-12-02T00:00:00Z", due_before="2026-12-04T00:00:00Z", sort="due_at") == ["t2", "t3"]
    assert titles(tag="a", sort="due_at") == ["t1", "t3"]
    page = client.get("/api/tasks", params={"sort": "due_at", "limit": 2, "offset": 2}, headers=auth()).json()
    assert [t["title"] for t in page["items"]] == ["t3", "t4"]
    assert page["total"] == 4
    # The total counts what the filters match, not the page, even on a page past the end.
    for params, total in (({"status": "pending", "limit": 1}, 3), ({"offset": 10}, 4), ({"tag": "b", "offset": 5}, 2),
                          ({"status": "completed", "tag": "b"}, 0)):
        page = client.get("/api/tasks", params=params, headers=auth()).json()
        assert page["total"] == total, params


@contextmanager
def statements_sent(client: TestClient) -> Iterator[list[tuple[str, bool]]]:
    """(SQL, executemany) of every statement the app's engine sends while the block runs."""
    sent: list[tuple[str, bool]] = []
    engine = cast(FastAPI, client.app).state.database.engine

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool) -> None:
        sent.append((statement, executemany))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_statements_per_request(client: TestClient, auth: Auth) -> None:
    """Each statement is a round trip to PostgreSQL, and on a loaded machine a wait for its server
    process and then for the GIL: a page of tasks is one statement (its total rides on every row)."""
    task = create(client, auth)
    for i in range(2):
        create(client, auth, title=f"more {i}")
    with statements_sent(client) as sent:
        page = client.get("/api/tasks", params={"limit": 2}, headers=auth()).json()
    assert (len(page["items"]), page["total"], len(sent)) == (2, 3, 1)
    with statements_sent(client) as sent:
        page = client.get("/api/tasks", params={"offset": 5}, headers=auth()).json()
    assert (page["items"], page["total"], len(sent)) == ([], 3, 2)  # past the end: counted apart
    with statements_sent(client) as sent:
        assert client.get(f"/api/tasks/{task['id']}", headers=auth()).status_code == 200
    assert len(sent) == 1


def test_tag_filter_keeps_the_sort_order_undated_tasks_last(client: TestClient, auth: Auth) -> None:
    """Regression: with `tag`, -due_at listed undated tasks first (without it they came last)."""
    create(client, auth, title="undated", tags=["home", "x"])
    create(client, auth, title="early", tags=["home"], due_at="2026-12-01T10:00:00+00:00")
    create(client, auth, title="late", tags=["x", "home"], due_at="2026-12-03T10:00:00+00:00")
    create(client, auth, title="other tag", tags=["work"], due_at="2026-12-02T10:00:00+00:00")
    create(client, auth, title="homework", tags=["homework"])  # a longer tag is not a match
    create(client, auth, "bob", title="bob's", tags=["home"])

    def titles(**params: object) -> list[str]:
        response = client.get("/api/tasks", params=params, headers=auth())
        assert response.status_code == 200, response.text
        return [t["title"] for t in response.json()["items"]]

    everything = titles(sort="-due_at")
    assert everything[:3] == ["late", "other tag", "early"]
    assert set(everything[3:]) == {"undated", "homework"}  # without a tag: undated last
    assert titles(tag="home", sort="-due_at") == ["late", "early", "undated"]
    assert titles(tag="home", sort="due_at") == ["early", "late", "undated"]
    assert titles(tag="x", sort="title") == ["late", "undated"]
    page = client.get("/api/tasks", params={"tag": "home", "sort": "-due_at", "limit": 1, "offset": 1},
                      headers=auth()).json()
    assert [t["title"] for t in page["items"]] == ["early"]
    assert page["total"] == 3
    assert titles(tag="nowhere") == []


def test_stale_if_match_is_refused_and_nothing_changes(client: TestClient, auth: Auth) -> None:
    task = create(client, auth)
    client.patch(f"/api/tasks/{task['id']}", json={"title": "v2"}, headers=auth())
    stale = client.patch(f"/api/tasks/{task['id']}", json={"title": "lost update"},
                         headers={**auth(), "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["etag"] == '"2"'
    assert client.delete(f"/api/tasks/{task['id']}", headers={**auth(), "If-Match": '"1"'}).status_code == 412
    assert client.get(f"/api/tasks/{task['id']}", headers=auth()).json()["title"] == "v2"


def test_completing_twice_is_a_conflict(client: TestClient, auth: Auth) -> None:
    task = create(client, auth)
    assert client.post(f"/api/tasks/{task['id']}/complete", headers=auth()).status_code == 200
    again = client.post(f"/api/tasks/{task['id']}/complete", headers=auth())
    assert again.status_code == 409
    assert "already completed" in again.json()["detail"]


def test_recurrence_rule_is_stored_canonical_with_a_series(client: TestClient, auth: Auth) -> None:
    task = create(client, auth, due_at=DUE, recurrence_rule="rrule:interval=2;freq=daily")
    assert task["recurrence_rule"] == "FREQ=DAILY;INTERVAL=2"
    assert task["series_id"] == task["id"]
    assert task["occurrence_index"] == 1
    cleared = client.patch(f"/api/tasks/{task['id']}", json={"recurrence_rule": None}, headers=auth()).json()
    assert cleared["recurrence_rule"] is None
    assert cleared["series_id"] is None


def test_removing_the_due_date_cancels_the_reminder(client: TestClient, auth: Auth) -> None:
    task = create(client, auth, due_at=DUE)
    response = client.patch(f"/api/tasks/{task['id']}", json={"due_at": None}, headers=auth())
    assert response.status_code == 200
    last = outbox(client)[-1]
    assert last[1] == "todo.reminder.cancelled.v1"
    assert last[2]["data"]["reason"] == "reminder_removed"
