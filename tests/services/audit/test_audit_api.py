"""GET /api/audit: filters, pagination, and who may see which entries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.audit.main import build_app
from tests.services.audit.conftest import make_settings
from tests.utils.events import T0, delivered, reminder_scheduled, snapshot, task_event

Auth = Callable[..., dict[str, str]]
OPERATOR = "audit:read"


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[TestClient]:
    """Validation happens before any query: one database kind is enough for it."""
    with TestClient(build_app(make_settings(f"sqlite:///{tmp_path / 'audit.db'}"))) as test_client:
        yield test_client


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    """alice: 3 task events on t-a (created, updated, completed) an hour apart + 1 reminder; bob: 1 event."""
    task = snapshot(task_id="t-a", owner="alice")
    for hour, action in enumerate(("created", "updated", "completed")):
        event = task_event(action, task, when=T0 + timedelta(hours=hour))  # type: ignore[arg-type]
        assert client.post("/events/task-events", content=delivered(event, "task-events")).json() == {
            "status": "SUCCESS"}
    client.post("/events/reminders", content=delivered(reminder_scheduled(task_id="t-a"), "reminders"))
    client.post("/events/task-updates",
                content=delivered(task_event("created", snapshot(task_id="t-b", owner="bob")), "task-updates"))
    return client


def get(client: TestClient, auth: Auth, *, user: str = "alice", scopes: str = "tasks:read", **params: object):
    return client.get("/api/audit", params=params, headers=auth(user, scopes))


def test_users_see_only_their_own_entries(seeded: TestClient, auth: Auth) -> None:
    page = get(seeded, auth).json()
    assert page["total"] == 4
    assert {e["user_id"] for e in page["items"]} == {"alice"}
    assert get(seeded, auth, user="bob").json()["total"] == 1
    refused = get(seeded, auth, user="bob", user_id="alice")
    assert refused.status_code == 403
    assert OPERATOR in refused.json()["detail"]


def test_operators_see_everyone_and_filter_by_user(seeded: TestClient, auth: Auth) -> None:
    assert get(seeded, auth, user="ops", scopes=OPERATOR).json()["total"] == 5
    only_bob = get(seeded, auth, user="ops", scopes=OPERATOR, user_id="bob").json()
    assert [e["entity_id"] for e in only_bob["items"]] == ["t-b"]
    assert only_bob["items"][0]["topic"] == "task-updates"


def test_filters_combine(seeded: TestClient, auth: Auth) -> None:
    assert get(seeded, auth, action="updated").json()["total"] == 1
    assert get(seeded, auth, entity_id="t-a", topic="task-events").json()["total"] == 3
    assert get(seeded, auth, event_type="todo.reminder.scheduled.v1").json()["total"] == 1
    assert get(seeded, auth, entity_type="task", action="nothing").json()["total"] == 0
    window = get(seeded, auth, topic="task-events", since=(T0 + timedelta(minutes=30)).isoformat(),
                 until=(T0 + timedelta(hours=2)).isoformat()).json()
    assert [e["action"] for e in window["items"]] == ["updated"]
    # Offsets other than UTC mean the same instant.
    berlin = get(seeded, auth, topic="task-events", since="2026-12-01T10:00:00+01:00").json()
    assert [e["action"] for e in berlin["items"]] == ["completed", "updated"]


def test_pages_are_newest_first_and_complete(seeded: TestClient, auth: Auth) -> None:
    seen = []
    for offset in range(0, 4, 3):
        page = get(seeded, auth, limit=3, offset=offset).json()
        assert page["limit"] == 3
        assert page["offset"] == offset
        assert page["total"] == 4
        seen += page["items"]
    assert len({e["id"] for e in seen}) == 4
    times = [datetime.fromisoformat(e["occurred_at"]) for e in seen]
    assert times == sorted(times, reverse=True)
    assert all(t.tzinfo is not None for t in times)
    entry = next(e for e in seen if e["action"] == "completed")
    assert datetime.fromisoformat(entry["occurred_at"]) == T0 + timedelta(hours=2)
    assert entry["payload"]["task"]["id"] == "t-a"
    assert entry["correlation_id"]


@pytest.mark.parametrize(("params", "fragment"), [
    ({"limit": 0}, "limit"), ({"limit": 100_000}, "at most"), ({"offset": -1}, "offset"),
    ({"since": "yesterday"}, "since"), ({"since": "2026-12-01T10:00:00"}, "timezone offset"),
    ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "before until"),
    ({"action": ""}, "action"),
])
def test_bad_queries_get_a_clear_422(sqlite_client: TestClient, auth: Auth, params: dict, fragment: str) -> None:
    answer = get(sqlite_client, auth, **params)
    assert answer.status_code == 422
    assert fragment in answer.text


def test_the_api_needs_a_valid_token(client: TestClient, auth: Auth) -> None:
    assert client.get("/api/audit").status_code == 401
    assert client.get("/api/audit", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/audit", headers={"Authorization": "Basic YTpi"}).status_code == 401
