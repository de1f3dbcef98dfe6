"""The task-events subscription route answers Dapr's contract (no sidecar here: ports point nowhere)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from services.platform.events import TOPIC_TASK_EVENTS
from services.worker.config import WorkerSettings
from services.worker.main import build_app
from tests.utils.events import delivered, snapshot, task_event

ROUTE = "/events/task-events"


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = WorkerSettings(app_env="development", internal_api_token="internal-token-0123456789",
                              dapr_http_port=1, dapr_grpc_port=2, dapr_timeout_s=1)
    with TestClient(build_app(settings)) as test_client:
        yield test_client


def post(client: TestClient, body: bytes) -> str:
    answer = client.post(ROUTE, content=body, headers={"Content-Type": "application/cloudevents+json"})
    assert answer.status_code == 200
    return answer.json()["status"]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "worker", "topic": TOPIC_TASK_EVENTS, **labels}) or 0.0


@pytest.mark.parametrize("body", [b"not json", b'{"specversion":"1.0"}', b"[]",
                                  b'{"specversion":"1.0","id":"x","source":"s","type":"todo.task.made.v9","data":{}}'])
def test_off_contract_deliveries_are_dropped_to_the_dead_letter_topic(client: TestClient, body: bytes) -> None:
    before = counter("events_failed_total", stage="parse")
    assert post(client, body) == "DROP"
    assert counter("events_failed_total", stage="parse") == before + 1


def test_events_other_than_a_recurring_completion_are_acknowledged_without_dapr(client: TestClient) -> None:
    # The sidecar is unreachable: any Dapr call would turn these into RETRY.
    before = counter("events_consumed_total")
    assert post(client, delivered(task_event("created", snapshot(rule="FREQ=DAILY")), "task-events")) == "SUCCESS"
    assert post(client, delivered(task_event("completed", snapshot(status="completed")), "task-events")) == "SUCCESS"
    ended = snapshot(rule="FREQ=DAILY;COUNT=2", occurrence_index=2, status="completed",
                     series_start=datetime(2026, 11, 30, 8, tzinfo=UTC))
    assert post(client, delivered(task_event("completed", ended), "task-events")) == "SUCCESS"
    assert counter("events_consumed_total") == before + 3


def test_a_completion_that_needs_the_sidecar_asks_for_redelivery_while_it_is_down(client: TestClient) -> None:
    event = task_event("completed", snapshot(rule="FREQ=WEEKLY", status="completed"))
    assert post(client, delivered(event, "task-events")) == "RETRY"


def test_readiness_reports_the_missing_sidecar(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["dapr"].startswith("failing")
