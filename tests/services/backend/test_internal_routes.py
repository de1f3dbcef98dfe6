"""The internal routes: the worker's next instance of a series (guarded, idempotent by occurrence) and the
notification service's read of a task."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from services.backend.main import build_app
from tests.services.backend.conftest import make_settings

TOKEN = "internal-token-for-tests-0123456789"


def next_body(**overrides: object) -> dict:
    body = {
        "owner_id": "alice", "title": "Water plants", "due_at": "2026-12-02T08:00:00+00:00",
        "timezone": "Europe/Berlin", "recurrence_rule": "FREQ=DAILY", "series_id": "s-1",
        "series_start": "2026-12-01T08:00:00+00:00", "occurrence_index": 2,
    }
    body.update(overrides)
    return body


def test_next_occurrence_is_created_once_however_often_it_is_asked(database_url: str) -> None:
    app = build_app(make_settings(database_url, internal_api_token=TOKEN))
    with TestClient(app) as client:
        headers = {"X-Internal-Token": TOKEN}
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.post("/internal/recurrences/next", json=next_body(),
                                                          headers=headers), range(6)))
        assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
        assert len({a.json()["id"] for a in answers}) == 1
        created = answers[0].json()
        assert created["owner_id"] == "alice"
        assert created["occurrence_index"] == 2
        assert created["series_id"] == "s-1"


def test_internal_route_refuses_callers_without_the_token(database_url: str) -> None:
    with TestClient(build_app(make_settings(database_url, internal_api_token=TOKEN))) as client:
        assert client.post("/internal/recurrences/next", json=next_body()).status_code == 403
        wrong = client.post("/internal/recurrences/next", json=next_body(), headers={"X-Internal-Token": "nope"})
        assert wrong.status_code == 403
    with TestClient(build_app(make_settings(database_url))) as client:  # no token configured: closed
        assert client.post("/internal/recurrences/next", json=next_body(),
                           headers={"X-Internal-Token": ""}).status_code == 403


def test_internal_route_validates_the_occurrence(database_url: str) -> None:
    with TestClient(build_app(make_settings(database_url, internal_api_token=TOKEN))) as client:
        bad = client.post("/internal/recurrences/next", json=next_body(occurrence_index=1, due_at="tomorrow"),
                          headers={"X-Internal-Token": TOKEN})
        assert bad.status_code == 422
        fields = {tuple(e["loc"]) for e in bad.json()["errors"]}
        assert ("body", "occurrence_index") in fields
        assert ("body", "due_at") in fields
        naive = client.post("/internal/recurrences/next", json=next_body(due_at="2026-12-02T08:00:00"),
                            headers={"X-Internal-Token": TOKEN})
        assert naive.status_code == 422
        # The task fields are checked as the task API checks any new task: a 422, never a 500.
        bad_task = client.post("/internal/recurrences/next", json=next_body(timezone="Mars/Olympus", title=" "),
                               headers={"X-Internal-Token": TOKEN})
        assert bad_task.status_code == 422
        assert {e["loc"][-1] for e in bad_task.json()["errors"]} == {"timezone", "title"}


def test_internal_task_read_is_guarded_and_sees_any_owner(database_url: str,
                                                          auth: Callable[..., dict[str, str]]) -> None:
    """What the notification service reads a task through when a reminder fires."""
    with TestClient(build_app(make_settings(database_url, internal_api_token=TOKEN))) as client:
        created = client.post("/api/tasks", json={"title": "Pay rent", "due_at": "2026-12-01T08:00:00Z",
                                                  "reminder_offset_minutes": 15}, headers=auth("alice"))
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        read = client.get(f"/internal/tasks/{task_id}", headers={"X-Internal-Token": TOKEN})
        assert read.status_code == 200
        assert read.headers["ETag"] == '"1"'
        assert read.json()["owner_id"] == "alice"
        assert read.json()["reminder_offset_minutes"] == 15
        assert client.get(f"/internal/tasks/{task_id}").status_code == 403
        assert client.get(f"/internal/tasks/{task_id}", headers={"X-Internal-Token": "wrong"}).status_code == 403
        missing = client.get("/internal/tasks/nope", headers={"X-Internal-Token": TOKEN})
        assert missing.status_code == 404
        assert missing.json()["detail"] == "task not found"
