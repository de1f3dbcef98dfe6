"""The audit service for real: the dev sidecar delivers every topic from Kafka to its routes, a
poison message goes to the dead-letter topic, and readiness checks the sidecar and the database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest
from kafka import KafkaProducer
from sqlalchemy import text

from console.sandbox.broker import Broker
from services.audit.main import build_app
from services.platform.events import TOPIC_REMINDERS, TOPIC_TASK_EVENTS, TOPIC_TASK_UPDATES
from tests.services.audit.conftest import make_settings
from tests.utils.dapr_apps import Ports, Publisher, ServedApp, mesh, serve
from tests.utils.events import reminder_scheduled, snapshot, task_event
from tests.utils.kafka_topics import topic_reader
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.broker


@dataclass
class Audit:
    app: ServedApp
    publisher: Publisher


@pytest.fixture(scope="module")
def audit(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audit]:
    root: Path = tmp_path_factory.mktemp("audit-sidecar")
    ports = Ports()
    app = build_app(make_settings(f"sqlite:///{root / 'audit.db'}", **ports.settings()))
    with mesh(root / "mesh", kafka_broker.bootstrap) as dapr, serve(app, ports.app) as served:
        dapr.sidecar("audit", ports)
        yield Audit(served, dapr.publisher())


def audited(app: ServedApp, event_id: str) -> list[tuple[str, str]]:
    with app.app.state.database.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            text("SELECT topic, action FROM audit_log WHERE event_id = :id"), {"id": event_id})]


def test_events_published_on_every_topic_are_recorded(audit: Audit) -> None:
    task = snapshot(owner="carol")
    sent = {TOPIC_TASK_EVENTS: task_event("created", task), TOPIC_TASK_UPDATES: task_event("updated", task),
            TOPIC_REMINDERS: reminder_scheduled(task_id=task.id, owner="carol")}
    for topic, event in sent.items():
        audit.publisher.publish(topic, event)
    for topic, event in sent.items():
        rows = wait_until(partial(audited, audit.app, event.id), 30, message=f"the {topic} event in the log")
        assert rows == [(topic, event.data["action"])]


def test_a_poison_message_is_dropped_to_the_dead_letter_topic(audit: Audit, kafka_broker: Broker) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    producer.send(TOPIC_TASK_UPDATES, key=b"poison", value=b'{"specversion":"1.0","id":"p-1","type":"nope"}')
    producer.flush()
    producer.close()
    with topic_reader(kafka_broker.bootstrap, f"{TOPIC_TASK_UPDATES}-dlq") as dlq:
        records = dlq.wait(lambda rs: any(b"p-1" in (r.value or b"") for r in rs), timeout=30,
                           message="the poison message in task-updates-dlq")
    assert any(b"p-1" in (r.value or b"") for r in records)
    assert audited(audit.app, "p-1") == []


def test_readiness_checks_sidecar_and_database(audit: Audit) -> None:
    answer = httpx.get(f"{audit.app.url}/readyz", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok", "dapr": "ok"}
