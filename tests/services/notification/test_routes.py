"""The reminders subscription and the job trigger route, without a sidecar (ports point nowhere)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.notification.config import NotificationSettings
from services.notification.main import build_app
from services.notification.notifiers import LogNotifier, WebhookNotifier
from tests.utils.events import delivered, reminder_scheduled, snapshot, task_event

JOB = {"task_id": "t-1", "task_version": 1, "user_id": "alice", "title": "Pay rent",
       "due_at": "2026-12-01T08:00:00+00:00", "remind_at": "2026-12-01T07:45:00+00:00"}


def settings(**overrides: object) -> NotificationSettings:
    values: dict[str, object] = {"app_env": "development", "internal_api_token": "internal-token-0123456789",
                                 "dapr_http_port": 1, "dapr_grpc_port": 2, "dapr_timeout_s": 1, **overrides}
    return NotificationSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build_app(settings())) as test_client:
        yield test_client


def test_reminder_events_need_the_sidecar_and_ask_for_redelivery_without_it(client: TestClient) -> None:
    answer = client.post("/events/reminders", content=delivered(reminder_scheduled(), "reminders"))
    assert answer.json() == {"status": "RETRY"}


def test_other_types_on_the_topic_are_acknowledged_and_garbage_is_dropped(client: TestClient) -> None:
    other = delivered(task_event("created", snapshot()), "reminders")
    assert client.post("/events/reminders", content=other).json() == {"status": "SUCCESS"}
    assert client.post("/events/reminders", content=b"{}").json() == {"status": "DROP"}


def test_job_trigger_answers(client: TestClient) -> None:
    assert client.post("/job/cleanup-1", json=JOB).status_code == 404
    bad = client.post("/job/reminder-t-1", json={"task_id": "t-1"})
    assert bad.status_code == 422
    assert "not a reminder" in bad.json()["detail"]
    # Checking the task needs the backend through the sidecar: without it, the trigger must fail (retried).
    down = client.post("/job/reminder-t-1", content=json.dumps(JOB))
    assert down.status_code == 503
    assert "retry" in down.json()["detail"]


def test_the_notifier_follows_the_settings() -> None:
    with TestClient(build_app(settings())) as client:
        assert isinstance(client.app.state.notifier, LogNotifier)  # type: ignore[attr-defined]
    webhook = settings(notifier="webhook", webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret-value-x")
    with TestClient(build_app(webhook)) as client:
        notifier = client.app.state.notifier  # type: ignore[attr-defined]
        assert isinstance(notifier, WebhookNotifier)
        assert notifier.secret == "s3cret-value-x"
    with pytest.raises(ValueError, match="WEBHOOK_URL"):
        settings(notifier="webhook")
