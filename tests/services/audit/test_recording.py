"""Every topic lands in the audit log once per event, whatever the redeliveries."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from services.audit import store
from services.audit.recording import entry_values
from services.platform.database import write_transaction
from services.platform.events import TaskEventData
from tests.utils.events import delivered, reminder_cancelled, reminder_scheduled, snapshot, task_event


def deliver(client: TestClient, topic: str, body: bytes) -> str:
    answer = client.post(f"/events/{topic}", content=body)
    assert answer.status_code == 200
    return answer.json()["status"]


def rows(client: TestClient) -> list[tuple]:
    with client.app.state.database.engine.connect() as conn:  # type: ignore[attr-defined]
        return list(conn.execute(text(
            "SELECT topic, event_id, event_type, user_id, action, entity_type, entity_id, correlation_id "
            "FROM audit_log ORDER BY id")))


def test_each_topic_is_recorded_with_who_what_and_which_entity(client: TestClient) -> None:
    task = snapshot(task_id="t-1", owner="bob")
    created = task_event("created", task)
    scheduled = reminder_scheduled(task_id="t-1", owner="bob")
    cancelled = reminder_cancelled(task_id="t-1", owner="bob")
    assert deliver(client, "task-events", delivered(created, "task-events")) == "SUCCESS"
    assert deliver(client, "reminders", delivered(scheduled, "reminders")) == "SUCCESS"
    assert deliver(client, "reminders", delivered(cancelled, "reminders")) == "SUCCESS"
    assert rows(client) == [
        ("task-events", created.id, "todo.task.created.v1", "bob", "created", "task", "t-1", created.correlationid),
        ("reminders", scheduled.id, "todo.reminder.scheduled.v1", "bob", "reminder_scheduled", "task", "t-1",
         scheduled.correlationid),
        ("reminders", cancelled.id, "todo.reminder.cancelled.v1", "bob", "reminder_cancelled", "task", "t-1",
         cancelled.correlationid),
    ]


def test_redelivered_events_answer_success_and_leave_one_row(client: TestClient) -> None:
    event = task_event("updated", snapshot())
    body = delivered(event, "task-events")
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: deliver(client, "task-events", body), range(8)))
    assert answers == ["SUCCESS"] * 8
    assert [r[1] for r in rows(client)] == [event.id]


def test_the_same_event_id_on_two_topics_is_two_rows(client: TestClient) -> None:
    # The backend gives the task-updates copy its own id; even if an id did repeat across topics,
    # the uniqueness is per (topic, event id), so neither copy is lost.
    event = task_event("completed", snapshot(status="completed"))
    assert deliver(client, "task-events", delivered(event, "task-events")) == "SUCCESS"
    assert deliver(client, "task-updates", delivered(event, "task-updates")) == "SUCCESS"
    assert sorted(r[0] for r in rows(client)) == ["task-events", "task-updates"]


def test_off_contract_events_are_dropped_not_recorded(client: TestClient) -> None:
    assert deliver(client, "reminders", b'{"specversion":"1.0","id":"x","source":"s","type":"t","data":{}}') == "DROP"
    assert rows(client) == []


def test_the_log_refuses_updates_and_deletes(client: TestClient) -> None:
    deliver(client, "task-events", delivered(task_event("created", snapshot()), "task-events"))
    engine = client.app.state.database.engine  # type: ignore[attr-defined]
    for statement in ("UPDATE audit_log SET user_id = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert len(rows(client)) == 1


def test_a_database_outage_asks_for_redelivery(client: TestClient) -> None:
    client.app.state.database.engine.dispose()  # type: ignore[attr-defined]
    with client.app.state.database.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("ALTER TABLE audit_log RENAME TO audit_log_moved"))
    try:
        assert deliver(client, "task-events", delivered(task_event("created", snapshot()), "task-events")) == "RETRY"
    finally:
        with client.app.state.database.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text("ALTER TABLE audit_log_moved RENAME TO audit_log"))
    readiness = client.get("/readyz").json()
    assert readiness["checks"]["database"] == "ok"


def bulk(topic: str, *entries: tuple[str, object]) -> dict:
    """daprd's bulk envelope (pubsub-bulk docs): each entry's CloudEvent as a JSON object."""
    return {
        "id": "bulk-1", "type": "com.dapr.event.sent.bulk", "pubsubname": "kafka-pubsub", "topic": topic,
        "metadata": {}, "entries": [
            {"entryId": entry_id, "event": event, "contentType": "application/cloudevents+json", "metadata": {}}
            for entry_id, event in entries],
    }


def as_json(body: bytes) -> object:
    return json.loads(body)


def test_a_bulk_delivery_records_every_entry_and_answers_each(client: TestClient) -> None:
    task = snapshot(task_id="t-9", owner="carol")
    events = [task_event(action, task) for action in ("created", "updated", "completed")]
    answer = client.post("/events/task-events", json=bulk(
        "task-events", *((f"e{n}", as_json(delivered(e, "task-events"))) for n, e in enumerate(events))))
    assert answer.status_code == 200
    assert answer.json() == {"statuses": [{"entryId": f"e{n}", "status": "SUCCESS"} for n in range(3)]}
    assert [(r[1], r[4]) for r in rows(client)] == [(e.id, a) for e, a in zip(
        events, ("created", "updated", "completed"), strict=True)]


def test_a_bulk_entry_off_the_contract_is_dropped_alone(client: TestClient) -> None:
    good = task_event("created", snapshot())
    answer = client.post("/events/task-events", json=bulk(
        "task-events", ("bad", {"specversion": "1.0", "id": "x", "source": "s", "type": "t", "data": {}}),
        ("good", as_json(delivered(good, "task-events"))), ("text", "not a cloud event")))
    statuses = {s["entryId"]: s["status"] for s in answer.json()["statuses"]}
    assert statuses == {"bad": "DROP", "good": "SUCCESS", "text": "DROP"}
    assert [r[1] for r in rows(client)] == [good.id]


def test_a_redelivered_bulk_is_success_and_adds_nothing(client: TestClient) -> None:
    event = task_event("deleted", snapshot())
    body = bulk("task-events", ("a", as_json(delivered(event, "task-events"))))
    first = client.post("/events/task-events", json=body).json()
    again = client.post("/events/task-events", json=body).json()
    assert first == again == {"statuses": [{"entryId": "a", "status": "SUCCESS"}]}
    assert [r[1] for r in rows(client)] == [event.id]


def test_a_database_outage_asks_for_the_whole_bulk_again_and_records_none(client: TestClient) -> None:
    events = [task_event("created", snapshot(task_id=f"t-{n}")) for n in range(3)]
    body = bulk("task-events", *((f"e{n}", as_json(delivered(e, "task-events"))) for n, e in enumerate(events)))
    engine = client.app.state.database.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_log RENAME TO audit_log_moved"))
    try:
        answer = client.post("/events/task-events", json=body).json()
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log_moved RENAME TO audit_log"))
    assert {s["status"] for s in answer["statuses"]} == {"RETRY"}
    assert rows(client) == []
    assert {s["status"] for s in client.post("/events/task-events", json=body).json()["statuses"]} == {"SUCCESS"}
    assert len(rows(client)) == 3


def test_a_batch_is_one_insert_and_names_what_was_already_there(client: TestClient) -> None:
    database = client.app.state.database  # type: ignore[attr-defined]
    old, new = (task_event(action, snapshot()) for action in ("created", "updated"))
    values = [entry_values("task-events", e, TaskEventData.model_validate(e.data)) for e in (old, new, new)]
    with write_transaction(database.sessions) as session:
        assert store.append_all(session, values[:1]) == [True]
    statements: list[str] = []
    listen = ("before_cursor_execute", lambda *args: statements.append(args[2]))
    event.listen(database.engine, *listen)
    try:
        with write_transaction(database.sessions) as session:
            appended = store.append_all(session, [values[0], *values[1:]])
    finally:
        event.remove(database.engine, *listen)
    assert appended == [False, True, False]  # recorded before; new; the same event twice in the batch
    assert [s.split()[0] for s in statements] == ["INSERT"]
    assert [r[1] for r in rows(client)] == [old.id, new.id]
