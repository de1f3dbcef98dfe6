"""The worker for real: its DaprGateway against the dev sidecar (state store, service invocation of
the real backend app), with deliveries both posted directly and coming through Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from console.sandbox.broker import Broker
from services.backend.models import Task
from services.platform.dapr_gateway import DaprGateway
from services.platform.events import TOPIC_TASK_EVENTS, CloudEvent
from services.worker.config import WorkerSettings
from services.worker.main import build_app as build_worker
from tests.utils.dapr_apps import (
    INTERNAL_TOKEN,
    Ports,
    Publisher,
    ServedApp,
    mesh,
    serve,
)
from tests.utils.events import delivered, snapshot, task_event
from tests.utils.kafka_topics import topic_reader
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.broker


@dataclass
class World:
    """The backend and two worker replicas, each with its own sidecar (one shared state store).

    Caveat of running two apps in one process: the SDK keeps the sidecar's HTTP port in a
    process-wide setting, so both workers' service invocations go through the second one's
    sidecar; state-store calls (gRPC, per-client address) go through each worker's own.
    """

    backend: ServedApp
    workers: list[tuple[ServedApp, DaprGateway]]
    publisher: Publisher

    def series(self, series_id: str) -> list[Task]:
        with self.backend.app.state.database.sessions() as session:
            return list(session.scalars(select(Task).where(Task.series_id == series_id)
                                        .order_by(Task.occurrence_index)))


def worker_settings(ports: Ports, **overrides: object) -> WorkerSettings:
    values: dict[str, object] = {"app_env": "development", "internal_api_token": INTERNAL_TOKEN,
                                 **ports.settings(), **overrides}
    return WorkerSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("worker-sidecar")
    with mesh(root / "mesh", kafka_broker.bootstrap) as dapr, dapr.backend(root / "backend.db") as backend:
        workers = []
        with serve(build_worker(worker_settings(first := Ports())), first.app) as one, \
                serve(build_worker(worker_settings(second := Ports())), second.app) as two:
            for app, ports in ((one, first), (two, second)):
                dapr.sidecar("worker", ports)
                workers.append((app, app.app.state.gateway))
            yield World(backend, workers, dapr.publisher())


def post(app: ServedApp, body: bytes) -> str:
    answer = httpx.post(f"{app.url}/events/task-events", content=body, timeout=30,
                        headers={"content-type": "application/cloudevents+json"})
    assert answer.status_code == 200, answer.text
    return answer.json()["status"]


def completed(rule: str, *, tz: str = "UTC", due: datetime, index: int = 1) -> tuple[bytes, str]:
    task = snapshot(rule=rule, tz=tz, due_at=due, series_start=due if index == 1 else None, occurrence_index=index,
                    status="completed")
    return delivered(task_event("completed", task), TOPIC_TASK_EVENTS), task.recurrence.series_id  # type: ignore[union-attr]


def test_a_completion_creates_the_next_instance_once_and_records_it(world: World) -> None:
    app, gateway = world.workers[0]
    body, series = completed("FREQ=MONTHLY;BYMONTHDAY=-1", tz="America/New_York",
                             due=datetime(2027, 1, 31, 14, tzinfo=UTC))
    assert post(app, body) == "SUCCESS"
    [nxt] = world.series(series)
    # Feb 28 09:00 New York (EST, UTC-5) = 14:00 UTC; the task keeps its owner, title and rule.
    assert nxt.occurrence_index == 2
    assert nxt.due_at == datetime(2027, 2, 28, 14, tzinfo=UTC)
    assert nxt.owner_id == "alice"
    assert nxt.recurrence_rule == "FREQ=MONTHLY;BYMONTHDAY=-1"
    recorded = asyncio.run(gateway.get_state(f"recur:{series}:2"))
    assert recorded is not None
    assert nxt.id in recorded.value.decode()
    # A redelivery is answered from the state store.
    assert post(app, body) == "SUCCESS"
    assert len(world.series(series)) == 1


def test_two_replicas_receiving_the_same_completion_create_one_instance(world: World) -> None:
    body, series = completed("FREQ=DAILY", due=datetime(2027, 5, 1, 8, tzinfo=UTC))
    targets = [app for app, _ in world.workers] * 4
    with ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(lambda app: post(app, body), targets))
    assert answers == ["SUCCESS"] * len(targets)
    assert [t.occurrence_index for t in world.series(series)] == [2]


def test_a_completion_published_through_kafka_reaches_the_worker(world: World) -> None:
    task = snapshot(rule="FREQ=WEEKLY;COUNT=5", due_at=datetime(2027, 3, 1, 9, tzinfo=UTC), status="completed")
    world.publisher.publish(TOPIC_TASK_EVENTS, task_event("completed", task))
    series = task.recurrence.series_id  # type: ignore[union-attr]
    [nxt] = wait_until(lambda: world.series(series), 30, message="the next instance via Kafka")
    assert nxt.due_at == datetime(2027, 3, 8, 9, tzinfo=UTC)


def test_an_off_contract_event_lands_in_the_dead_letter_topic(world: World, kafka_broker: Broker) -> None:
    """The worker's DROP answer, through the sidecar, puts the event on task-events-dlq on the broker."""
    poison = CloudEvent(source="backend", type="todo.task.made.v9", subject="t-poison", data={"task": "?"})
    with topic_reader(kafka_broker.bootstrap, f"{TOPIC_TASK_EVENTS}-dlq") as dlq:
        world.publisher.publish(TOPIC_TASK_EVENTS, poison)

        def ours(records: list[Any]) -> bool:
            return any(CloudEvent.model_validate_json(r.value).id == poison.id for r in records if r.value)

        records = dlq.wait(ours, timeout=30, message="the off-contract event in task-events-dlq")
    # At least once: a rebalance between the two replicas may dead-letter it twice, each the same way.
    for record in [r for r in records if r.value and CloudEvent.model_validate_json(r.value).id == poison.id]:
        headers = {key: value.decode() for key, value in record.headers}
        assert headers["x-dlq-subscription"] == "worker-task-events"
        assert headers["x-dlq-reason"] == "dropped"  # the app answered DROP, not retries running out
        assert CloudEvent.model_validate_json(record.value).type == "todo.task.made.v9"


def test_a_worker_with_the_wrong_internal_token_asks_for_redelivery(world: World) -> None:
    app, _ = world.workers[0]
    body, series = completed("FREQ=DAILY", due=datetime(2027, 6, 1, 8, tzinfo=UTC))
    app.app.state.settings = app.app.state.settings.model_copy(update={"internal_api_token": "wrong-token-value"})
    try:
        assert post(app, body) == "RETRY"  # 403 from the backend: fixable by configuration, so not dropped
    finally:
        app.app.state.settings = app.app.state.settings.model_copy(update={"internal_api_token": INTERNAL_TOKEN})
    assert world.series(series) == []
    assert post(app, body) == "SUCCESS"
    assert len(world.series(series)) == 1
