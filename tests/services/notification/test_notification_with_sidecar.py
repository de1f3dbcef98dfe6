"""Reminders for real: Dapr Jobs scheduled through the dev sidecar fire POST /job/<name> on the
notification app, which reads the task back from the real backend (service invocation) and sends
a signed webhook to a local receiver; and one reminder followed from the API call, through the
outbox relay, Kafka, the job and its firing, to its delivery, under one correlation id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from dapr.clients.exceptions import DaprGrpcError
from prometheus_client import REGISTRY

from console.sandbox.broker import Broker
from services.notification.config import NotificationSettings
from services.notification.jobs import JOB_PREFIX
from services.notification.main import build_app as build_notification
from services.notification.notifiers import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from services.platform.auth import mint_dev_token
from services.platform.events import TOPIC_REMINDERS, CloudEvent
from services.platform.logs import JsonFormatter
from tests.services.backend.conftest import JWT_SECRET
from tests.utils.dapr_apps import (
    INTERNAL_TOKEN,
    Ports,
    ServedApp,
    mesh,
    serve,
)
from tests.utils.events import delivered, reminder_cancelled, reminder_scheduled
from tests.utils.stub_apps import start_app
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.broker
WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789"


@dataclass
class Hooks:
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def hooks() -> Iterator[Hooks]:
    state = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = verify_signature(WEBHOOK_SECRET, body, self.headers.get(TIMESTAMP_HEADER),
                                  self.headers.get(SIGNATURE_HEADER))
            if ok:
                state.received.append(json.loads(body))
            self.send_response(204 if ok else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class World:
    backend: ServedApp
    notification: ServedApp
    sidecar: Any
    hooks: Hooks

    def create_task(self, *, remind_in_s: float, offset_min: int = 15, title: str = "Pay rent") -> dict:
        due = datetime.now(UTC) + timedelta(minutes=offset_min, seconds=remind_in_s)
        answer = httpx.post(f"{self.backend.url}/api/tasks", headers=self.user(), json={
            "title": title, "due_at": due.isoformat(), "reminder_offset_minutes": offset_min})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def user(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(JWT_SECRET, 'alice')}"}

    def reminder(self, task: dict) -> str:
        """Deliver the reminder event the backend wrote for this task version."""
        return self.deliver(self.scheduled_event(task))

    @staticmethod
    def scheduled_event(task: dict) -> CloudEvent:
        """A reminder event for this task version (a new event id and correlation id each time)."""
        event = reminder_scheduled(task_id=task["id"], due_at=datetime.fromisoformat(task["due_at"]),
                                   offset_min=task["reminder_offset_minutes"], version=task["version"],
                                   title=task["title"])
        return event.model_copy(update={"correlationid": f"req-{uuid.uuid4().hex}"})

    def deliver(self, event: CloudEvent) -> str:
        """POST the event to the notification app as daprd delivers it; its answer's status."""
        answer = httpx.post(f"{self.notification.url}/events/reminders", content=delivered(event, TOPIC_REMINDERS),
                            timeout=30)
        return str(answer.json()["status"])

    def job_data(self, task_id: str) -> dict[str, Any] | None:
        """The reminder job's data, read through the notification's own gateway (None: no job)."""
        return asyncio.run(self.notification.app.state.gateway.get_job(f"{JOB_PREFIX}{task_id}"))

    def job(self, task_id: str) -> Any:
        client = self.sidecar.client()
        try:
            return client.get_job(f"reminder-{task_id}")
        except DaprGrpcError as exc:
            # daprd wraps the Scheduler's NotFound: INTERNAL "failed to get job due to: ... NotFound ..."
            if exc.code() == grpc.StatusCode.NOT_FOUND or "NotFound" in (exc.details() or ""):
                return None
            raise
        finally:
            client.close()

    def deliveries(self, task_id: str) -> list[dict[str, Any]]:
        return [d for d in self.hooks.received if d["task_id"] == task_id]


@pytest.fixture(scope="module")
def world(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory, hooks: Hooks) -> Iterator[World]:
    root = tmp_path_factory.mktemp("notification-sidecar")
    ports = Ports()
    settings = NotificationSettings(app_env="development", internal_api_token=INTERNAL_TOKEN, notifier="webhook",
                                    webhook_url=hooks.url, webhook_secret=WEBHOOK_SECRET, **ports.settings())
    with mesh(root / "mesh", kafka_broker.bootstrap) as dapr, dapr.backend(root / "backend.db") as backend, \
            serve(build_notification(settings), ports.app) as notification:
        yield World(backend, notification, dapr.sidecar("notification", ports), hooks)


def test_a_reminder_fires_at_its_time_and_is_delivered_once(world: World) -> None:
    task = world.create_task(remind_in_s=1.5)
    assert world.reminder(task) == "SUCCESS"
    job = world.job(task["id"])
    assert job is not None
    [sent] = wait_until(lambda: world.deliveries(task["id"]), 20, message="the webhook delivery")
    assert sent["title"] == "Pay rent"
    assert sent["task_version"] == task["version"]
    assert sent["user_id"] == "alice"
    fired_at = datetime.now(UTC)
    assert fired_at >= datetime.fromisoformat(sent["remind_at"])
    # The same trigger again (a retried trigger, another replica): deduplicated.
    again = httpx.post(f"{world.notification.url}/job/reminder-{task['id']}", timeout=30, json={
        "task_id": task["id"], "task_version": task["version"], "user_id": "alice", "title": "Pay rent",
        "due_at": task["due_at"], "remind_at": sent["remind_at"]})
    assert again.json() == {"status": "skipped", "reason": "already delivered"}
    assert len(world.deliveries(task["id"])) == 1


def test_an_edit_after_the_reminder_went_out_does_not_notify_again(world: World) -> None:
    task = world.create_task(remind_in_s=0.5)
    assert world.reminder(task) == "SUCCESS"
    wait_until(lambda: world.deliveries(task["id"]), 20, message="the first delivery")
    renamed = httpx.patch(f"{world.backend.url}/api/tasks/{task['id']}", headers={**world.user(), "If-Match": '"1"'},
                          json={"title": "Pay the rent"})
    assert renamed.status_code == 200, renamed.text
    # A scheduled event for the same, passed time at version 2 (the backend publishes none for a title
    # edit since issue 15, but a replay from the DLQ, or an older backend, still can): no second delivery.
    assert world.reminder(renamed.json()) == "SUCCESS"
    fired = REGISTRY.get_sample_value("events_consumed_total", {"service": "notification", "topic": "jobs"}) or 0
    wait_until(lambda: world.job(task["id"]) is None, 20, message="the rescheduled job to fire")
    assert (REGISTRY.get_sample_value("events_consumed_total", {"service": "notification", "topic": "jobs"})
            or 0) > fired
    assert len(world.deliveries(task["id"])) == 1


def test_a_moved_due_date_reschedules_and_the_old_time_sends_nothing(world: World) -> None:
    task = world.create_task(remind_in_s=2)
    assert world.reminder(task) == "SUCCESS"
    moved = httpx.patch(f"{world.backend.url}/api/tasks/{task['id']}", headers={**world.user(), "If-Match": '"1"'},
                        json={"due_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
    assert moved.status_code == 200, moved.text
    assert world.reminder(moved.json()) == "SUCCESS"
    job = world.job(task["id"])
    assert job is not None
    assert job.due_time.startswith((datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d"))
    # An old event replayed after the newer one leaves the newer job alone.
    assert world.reminder(task) == "SUCCESS"
    assert world.job(task["id"]).due_time == job.due_time


def test_a_cancelled_reminder_deletes_the_job(world: World) -> None:
    task = world.create_task(remind_in_s=3600)
    assert world.reminder(task) == "SUCCESS"
    assert world.job(task["id"]) is not None
    cancel = reminder_cancelled(task_id=task["id"], version=2, reason="completed")
    answer = httpx.post(f"{world.notification.url}/events/reminders", content=delivered(cancel, TOPIC_REMINDERS))
    assert answer.json() == {"status": "SUCCESS"}
    assert world.job(task["id"]) is None
    # Cancelling again (redelivery) is still a success: the job is already gone.
    answer = httpx.post(f"{world.notification.url}/events/reminders", content=delivered(cancel, TOPIC_REMINDERS))
    assert answer.json() == {"status": "SUCCESS"}


def test_a_completed_task_gets_no_notification(world: World) -> None:
    task = world.create_task(remind_in_s=1)
    done = httpx.post(f"{world.backend.url}/api/tasks/{task['id']}/complete", headers=world.user())
    assert done.status_code == 200, done.text
    trigger = httpx.post(f"{world.notification.url}/job/reminder-{task['id']}", timeout=30, json={
        "task_id": task["id"], "task_version": 1, "user_id": "alice", "title": "Pay rent", "due_at": task["due_at"],
        "remind_at": (datetime.fromisoformat(task["due_at"]) - timedelta(minutes=15)).isoformat()})
    assert trigger.json() == {"status": "skipped", "reason": "task completed"}
    assert world.deliveries(task["id"]) == []


def test_a_deleted_task_gets_no_notification(world: World) -> None:
    task = world.create_task(remind_in_s=1)
    assert httpx.delete(f"{world.backend.url}/api/tasks/{task['id']}", headers=world.user()).status_code == 204
    trigger = httpx.post(f"{world.notification.url}/job/reminder-{task['id']}", timeout=30, json={
        "task_id": task["id"], "task_version": 1, "user_id": "alice", "title": "x", "due_at": task["due_at"],
        "remind_at": task["due_at"]})
    assert trigger.json() == {"status": "skipped", "reason": "task deleted"}


def test_a_stale_or_duplicate_event_never_reschedules_or_cancels_the_reminder(world: World) -> None:
    task = world.create_task(remind_in_s=3600)
    first = world.scheduled_event(task)
    assert world.deliver(first) == "SUCCESS"
    pending = world.job_data(task["id"])
    assert pending is not None
    assert (pending["task_version"], pending["correlation_id"]) == (1, first.correlationid)
    # The same version again, under a new event id and correlation (a redelivery, a DLQ replay
    # re-published): the job already is what it asks for, so it is not scheduled again.
    assert world.deliver(world.scheduled_event(task)) == "SUCCESS"
    assert world.job_data(task["id"]) == pending
    moved = httpx.patch(f"{world.backend.url}/api/tasks/{task['id']}", headers={**world.user(), "If-Match": '"1"'},
                        json={"due_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()})
    assert moved.status_code == 200, moved.text
    assert world.deliver(world.scheduled_event(moved.json())) == "SUCCESS"
    newer = world.job_data(task["id"])
    assert newer is not None
    assert newer["task_version"] == 2
    assert newer["remind_at"] != pending["remind_at"]
    # Version 1 again, scheduled or cancelled, after version 2: the newer reminder stays as it is.
    assert world.deliver(world.scheduled_event(task)) == "SUCCESS"
    assert world.deliver(reminder_cancelled(task_id=task["id"], version=1, reason="reminder_removed")) == "SUCCESS"
    assert world.job_data(task["id"]) == newer


def test_a_backend_that_does_not_answer_in_time_fails_the_trigger_for_a_retry(
        kafka_broker: Broker, tmp_path: Path) -> None:
    def too_slow(_: object) -> tuple[int, dict]:
        time.sleep(3)
        return 200, {}

    slow = start_app({"/internal/tasks/t-slow": too_slow})
    ports = Ports()
    settings = NotificationSettings(app_env="development", internal_api_token=INTERNAL_TOKEN, dapr_timeout_s=1,
                                    **ports.settings())
    try:
        with mesh(tmp_path / "mesh", kafka_broker.bootstrap) as dapr, \
                serve(build_notification(settings), ports.app) as notification:
            dapr.register("backend", slow.port)
            dapr.sidecar("notification", ports)
            trigger = httpx.post(f"{notification.url}/job/reminder-t-slow", timeout=30, json={
                "task_id": "t-slow", "task_version": 1, "user_id": "alice", "title": "x",
                "due_at": "2027-01-01T09:00:00Z", "remind_at": "2027-01-01T08:45:00Z"})
    finally:
        slow.stop()
    assert trigger.status_code == 503
    assert "retry" in trigger.json()["detail"]


@contextmanager
def log_lines() -> Iterator[io.StringIO]:
    """Every service log line in the block, as the services write them (JSON, with correlation ids).

    Entered once the apps are built: building one sets up the process's logging afresh."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_one_correlation_id_follows_a_reminder_from_the_api_call_to_its_delivery(
        kafka_broker: Broker, tmp_path: Path) -> None:
    ports = Ports()
    settings = NotificationSettings(app_env="development", internal_api_token=INTERNAL_TOKEN, notifier="log",
                                    **ports.settings())
    request_id = f"req-{uuid.uuid4().hex}"
    with mesh(tmp_path / "mesh", kafka_broker.bootstrap) as dapr, \
            dapr.backend(tmp_path / "backend.db", relaying=True) as backend, \
            serve(build_notification(settings), ports.app), log_lines() as written:
        dapr.sidecar("notification", ports)
        due = datetime.now(UTC) + timedelta(minutes=15, seconds=2)
        created = httpx.post(f"{backend.url}/api/tasks", json={
            "title": "Pay rent", "due_at": due.isoformat(), "reminder_offset_minutes": 15}, headers={
            "Authorization": f"Bearer {mint_dev_token(JWT_SECRET, 'alice')}", "X-Correlation-ID": request_id})
        assert created.status_code == 201, created.text
        job = f"reminder-{created.json()['id']}"

        def lines() -> dict[str, dict[str, Any]]:
            """This reminder's lines by message: scheduled, job handled, and the delivery (`reminder due`).

            The module's `world` runs a notification app and sidecar too, on the same topic: it schedules
            the reminder in its own job store and, when that job fires, finds no such task in its own
            backend and logs a skipped handling. This app's delivered handling is the one that counts."""
            parsed = (json.loads(line) for line in written.getvalue().splitlines())
            found: dict[str, dict[str, Any]] = {}
            for line in parsed:
                if job not in (line.get("job"), f"{JOB_PREFIX}{line.get('notification', {}).get('task_id')}"):
                    continue
                if line["msg"] != "reminder job handled" or found.get(line["msg"], {}).get("outcome") != "delivered":
                    found[line["msg"]] = line
            return found

        wait_until(lambda: lines().get("reminder job handled", {}).get("outcome") == "delivered", 120,
                   message="the reminder's job to fire and deliver")
    mine = lines()
    assert mine["reminder job handled"]["outcome"] == "delivered", mine
    assert mine["reminder due"]["notification"]["title"] == "Pay rent"
    assert {mine[msg]["correlation_id"] for msg in ("reminder scheduled", "reminder job handled", "reminder due")} \
        == {request_id}, mine
