"""The backend route the notification service reads a task through when a reminder fires."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.backend.main import build_app
from tests.services.backend.conftest import make_settings

TOKEN = "internal-token-for-tests-0123456789"


def test_internal_task_read_is_guarded_and_sees_any_owner(database_url: str, auth) -> None:
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
