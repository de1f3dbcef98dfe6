"""The outbox end to end: backend -> real dev sidecar (wired by kustomize/base) -> real broker.

While the sidecar is unreachable the API keeps answering and events wait in the outbox; once
it is back they all go out, each exactly once, in write order per task (SC-007, SC-008).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Self

import httpx
import pytest
import uvicorn
import yaml
from prometheus_client.parser import text_string_to_metric_families

from console.sandbox.broker import Broker, start_tansu
from console.sandbox.manifests import load_manifests, topics_to_create
from console.sandbox.ports import free_port
from console.sandbox.sidecar.resiliency import parse_duration
from console.sandbox.topics import ensure_topics
from services.backend.main import build_app
from services.backend.models import OutboxEvent
from services.platform.auth import mint_dev_token
from services.platform.database import Database
from services.platform.events import TOPICS
from tests.services.backend.conftest import JWT_SECRET, make_settings
from tests.utils.kafka_topics import topic_reader
from tests.utils.sidecars import Sandbox, make_sandbox
from tests.utils.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.broker


class Backend:
    """The real backend app served by uvicorn on a loopback port, relay enabled."""

    def __init__(self, tmp_path: Path, dapr_http: int, dapr_grpc: int) -> None:
        self.port = free_port()
        settings = make_settings(f"sqlite:///{tmp_path / 'backend.db'}", relay_enabled=True,
                                 relay_poll_interval_s=0.2, relay_max_backoff_s=0.5,
                                 dapr_http_port=dapr_http, dapr_grpc_port=dapr_grpc, dapr_timeout_s=2)
        self.app = build_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.headers = {"Authorization": f"Bearer {mint_dev_token(JWT_SECRET, 'alice')}"}
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=self.headers, timeout=10)

    def __enter__(self) -> Self:
        self.thread.start()
        wait_until(lambda: self.server.started, 20, message="backend started")
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(15)

    def outbox(self) -> list[OutboxEvent]:
        with self.app.state.database.sessions() as session:
            return list(session.query(OutboxEvent).order_by(OutboxEvent.id))


def published(broker: Broker, event_ids: set[str]) -> list[dict]:
    """Every copy of these events on the three topics (the broker is shared by other tests).

    Waits until each id has been seen, then keeps reading briefly so duplicates would show too.
    """
    readers = [topic_reader(broker.bootstrap, topic) for topic in TOPICS]
    found: list[dict] = []
    with readers[0] as r0, readers[1] as r1, readers[2] as r2:
        def seen(extra: float = 0.0) -> bool:
            for reader in (r0, r1, r2):
                for batch in reader.consumer.poll(timeout_ms=50).values():
                    found.extend(e for rec in batch if (e := json.loads(rec.value))["id"] in event_ids)
            return event_ids <= {e["id"] for e in found}
        wait_until(seen, 15, 0, message="all events on the topics")
        settle = time.monotonic() + 0.5
        while time.monotonic() < settle:
            seen()
    return found


@contextmanager
def stopping(sandbox: Sandbox) -> Iterator[Sandbox]:
    """Sidecars are subprocesses: stop them whatever the test's outcome."""
    try:
        yield sandbox
    finally:
        sandbox.stop_all()


def change_tasks(backend: Backend) -> list[str]:
    ids = []
    for n in range(3):
        created = backend.http.post("/api/tasks", json={"title": f"t{n}", "due_at": "2026-12-24T18:00:00+01:00"})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    assert backend.http.patch(f"/api/tasks/{ids[0]}", json={"due_at": "2026-12-25T09:00:00+01:00"}).status_code == 200
    assert backend.http.post(f"/api/tasks/{ids[1]}/complete").status_code == 200
    assert backend.http.delete(f"/api/tasks/{ids[2]}").status_code == 204
    return ids


def outbox_metrics(backend: Backend) -> dict[str, float]:
    """The backend's outbox gauges as /metrics serves them."""
    found = {}
    for family in text_string_to_metric_families(backend.http.get("/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("outbox_") and sample.labels.get("service") == "backend":
                found[sample.name] = sample.value
    return found


def test_events_wait_for_the_sidecar_then_all_go_out_once_in_order(
        kafka_broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broker = kafka_broker
    sandbox: Sandbox = make_sandbox(tmp_path / "sandbox", broker.bootstrap, {})
    sandbox.resources = REPO / "kustomize" / "base"
    http_port, grpc_port = free_port(), free_port()
    with Backend(tmp_path, http_port, grpc_port) as backend, stopping(sandbox):
        change_tasks(backend)  # the sidecar is not running: the API answers all the same
        rows = backend.outbox()
        assert len(rows) == 18
        assert all(r.published_at is None for r in rows)
        ready = backend.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["dapr"].startswith("failing")
        time.sleep(1.0)  # the relay keeps trying and failing meanwhile
        assert all(r.published_at is None for r in backend.outbox())
        assert max(r.attempts for r in backend.outbox()) >= 1
        # The stall shows in /metrics: the backlog, and an age that keeps growing while nothing goes out.
        first = outbox_metrics(backend)
        assert first["outbox_pending_events"] == 18
        time.sleep(0.5)
        assert outbox_metrics(backend)["outbox_oldest_pending_age_seconds"] >= \
            first["outbox_oldest_pending_age_seconds"] + 0.4 > 1.0

        sidecar = sandbox.start("backend", backend.port, http_port=http_port, grpc_port=grpc_port)
        wait_until(lambda: all(r.published_at for r in backend.outbox()), 30, message="outbox drained")
        assert backend.http.get("/readyz").status_code == 200
        wait_until(lambda: outbox_metrics(backend) == {"outbox_pending_events": 0.0,
                                                       "outbox_oldest_pending_age_seconds": 0.0},
                   10, message="the outbox gauges back to 0")
        # The relay's lines about an event carry that event's correlation id (the request that wrote it).
        logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        written_by = {r.event_id: r.correlation_id for r in backend.outbox()}
        relay_lines = [line for line in logged if line["msg"].startswith("outbox publish")]
        assert {line["msg"] for line in relay_lines} == {"outbox publish failing; events wait in the outbox",
                                                         "outbox publishing resumed"}
        assert all(line["correlation_id"] == written_by[line["event_id"]] for line in relay_lines)

        event_ids = [r.event_id for r in backend.outbox()]
        events = published(broker, set(event_ids))
        assert sorted(e["id"] for e in events) == sorted(event_ids)  # each exactly once
        for topic in ("task-events", "task-updates"):
            per_task: dict[str, list[str]] = {}
            for event in events:
                if event["topic"] == topic:
                    per_task.setdefault(event["subject"], []).append(event["type"].split(".")[2])
            assert sorted(per_task.values()) == sorted([["created", "updated"], ["created", "completed"],
                                                        ["created", "deleted"]])
        assert all(e["source"] == "backend" and e["pubsubname"] == "kafka-pubsub" for e in events)

        sidecar.stop()  # down again: new changes wait, then go out when it is back
        created = backend.http.post("/api/tasks", json={"title": "during the second outage"})
        assert created.status_code == 201
        time.sleep(0.5)
        assert [r.published_at for r in backend.outbox()[-2:]] == [None, None]
        sandbox.start("backend", backend.port, http_port=http_port, grpc_port=grpc_port)
        wait_until(lambda: all(r.published_at for r in backend.outbox()), 30, message="outbox drained again")
        event_ids = [r.event_id for r in backend.outbox()]
        assert sorted(e["id"] for e in published(broker, set(event_ids))) == sorted(event_ids)


def publish_breaker_timeout_s() -> float:
    """How long the base Resiliency's publish circuit breaker stays open once it has tripped."""
    docs = yaml.safe_load_all((REPO / "kustomize" / "base" / "apps" / "todo-resiliency-resiliency.yaml").read_text())
    resiliency = next(d for d in docs if d and d.get("kind") == "Resiliency")
    return parse_duration(resiliency["spec"]["policies"]["circuitBreakers"]["publishCB"]["timeout"])


def test_kafka_down_events_wait_then_go_out_when_it_is_back(tmp_path: Path) -> None:
    """The sidecar is up but the broker is gone: publishing fails within the client deadline (the
    relay is not stuck in daprd's outbound retries), the API answers, and nothing is lost.

    If the outage lasts long enough for the publish circuit breaker to trip (on a loaded machine it
    does), publishing resumes only once the breaker's timeout has passed, as with daprd."""
    broker = start_tansu(tmp_path / "broker")
    declared = topics_to_create(load_manifests(REPO / "kustomize" / "base"))
    ensure_topics(broker.bootstrap, declared)
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    sandbox = make_sandbox(tmp_path / "sandbox", broker.bootstrap, {})
    sandbox.resources = REPO / "kustomize" / "base"
    http_port, grpc_port = free_port(), free_port()
    try:
        with Backend(tmp_path, http_port, grpc_port) as backend, stopping(sandbox):
            sandbox.start("backend", backend.port, http_port=http_port, grpc_port=grpc_port)
            assert backend.http.post("/api/tasks", json={"title": "before"}).status_code == 201
            wait_until(lambda: all(r.published_at for r in backend.outbox()), 20, message="first publish")

            broker.stop()
            started = time.monotonic()
            for n in range(2):
                answer = backend.http.post("/api/tasks", json={"title": f"during {n}"})
                assert answer.status_code == 201
                assert time.monotonic() - started < 5
            # The relay keeps getting control back and retrying: attempts grow while Kafka is down.
            wait_until(lambda: max(r.attempts for r in backend.outbox()) >= 2, 30, message="repeated attempts")
            assert sum(r.published_at is None for r in backend.outbox()) == 4

            broker = start_tansu(tmp_path / "broker2", port=port)
            ensure_topics(broker.bootstrap, declared)
            wait_until(lambda: all(r.published_at for r in backend.outbox()), publish_breaker_timeout_s() + 30,
                       message="drained after Kafka (and after the publish breaker's timeout, if it tripped)")
            waited = [r.event_id for r in backend.outbox()[2:]]
            assert sorted(e["id"] for e in published(broker, set(waited))) == sorted(waited)
    finally:
        broker.stop()


def test_only_the_lease_holder_publishes_and_a_dead_holder_is_replaced(tmp_path: Path) -> None:
    from services.backend.main import DATABASE
    from services.backend.outbox import OutboxRelay

    database = Database(f"sqlite:///{tmp_path / 'lease.db'}", DATABASE)
    database.migrate()
    sessions = database.sessions
    first = OutboxRelay(sessions, None, lease_ttl_s=0.5)  # type: ignore[arg-type]
    second = OutboxRelay(sessions, None, lease_ttl_s=0.5)  # type: ignore[arg-type]
    first.holder, second.holder = "replica-a", "replica-b"
    assert first._hold_lease()
    assert first._hold_lease()
    assert not second._hold_lease()
    time.sleep(0.6)  # replica-a stops renewing (it died)
    assert second._hold_lease()
    assert not first._hold_lease()
    database.dispose()


def test_the_lease_is_renewed_once_a_third_of_its_ttl_has_passed_not_on_every_batch(tmp_path: Path) -> None:
    from services.backend.main import DATABASE
    from services.backend.models import RelayLease
    from services.backend.outbox import LEASE_NAME, OutboxRelay

    database = Database(f"sqlite:///{tmp_path / 'lease.db'}", DATABASE)
    database.migrate()
    sessions = database.sessions
    # A 30 s TTL: no renewal for 10 s, a window no loaded machine closes between two calls; then the
    # relay's clock is moved past a third of the TTL instead of sleeping through it.
    relay = OutboxRelay(sessions, None, lease_ttl_s=30)  # type: ignore[arg-type]

    def expires_at() -> datetime:
        with sessions() as session:
            lease = session.get(RelayLease, LEASE_NAME)
            assert lease is not None
            return lease.expires_at

    assert asyncio.run(relay._lease_held())
    taken = expires_at()
    assert asyncio.run(relay._lease_held())
    assert expires_at() == taken
    relay._renewed_at -= 11  # as if 11 s had passed since the lease was taken
    time.sleep(0.01)  # the new expiry must differ from the old at the clock's resolution
    assert asyncio.run(relay._lease_held())
    assert expires_at() > taken
    database.dispose()
