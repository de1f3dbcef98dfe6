"""The outbox end to end: backend -> real dev sidecar (wired by kustomize/base) -> real broker.

While the sidecar is unreachable the API keeps answering and events wait in the outbox; once
it is back they all go out, each exactly once, in write order per task (SC-007, SC-008).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from console.sandbox.broker import Broker
from console.sandbox.ports import free_port
from services.backend.main import build_app
from services.backend.models import OutboxEvent
from services.platform.auth import mint_dev_token
from services.platform.events import TOPICS
from tests.console.sandbox.sidecar.helpers import Sandbox, make_sandbox, topic_reader, wait_until
from tests.services.backend.conftest import JWT_SECRET, make_settings

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

    def __enter__(self) -> "Backend":
        self.thread.start()
        wait_until(lambda: self.server.started, 20, message="backend started")
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(15)

    def outbox(self) -> list[OutboxEvent]:
        with self.app.state.sessions() as session:
            return list(session.query(OutboxEvent).order_by(OutboxEvent.id))


def published(broker: Broker, event_ids: set[str]) -> list[dict]:
    """Every copy of these events found on the three topics (the broker is shared by other tests)."""
    events: list[dict] = []
    for topic in TOPICS:
        with topic_reader(broker.bootstrap, topic) as reader:
            time.sleep(0.3)  # let the reader catch up with what is already there
            reader.wait(lambda rs: True, 2)
            events += [e for r in reader.records if (e := json.loads(r.value))["id"] in event_ids]
    return events


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


def test_events_wait_for_the_sidecar_then_all_go_out_once_in_order(
        kafka_broker: Broker, tmp_path: Path) -> None:
    broker = kafka_broker
    sandbox: Sandbox = make_sandbox(tmp_path / "sandbox", broker.bootstrap, {})
    sandbox.resources = REPO / "kustomize" / "base"
    http_port, grpc_port = free_port(), free_port()
    with Backend(tmp_path, http_port, grpc_port) as backend:
        change_tasks(backend)  # the sidecar is not running: the API answers all the same
        rows = backend.outbox()
        assert len(rows) == 18 and all(r.published_at is None for r in rows)
        ready = backend.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["dapr"].startswith("failing")
        time.sleep(1.0)  # the relay keeps trying and failing meanwhile
        assert all(r.published_at is None for r in backend.outbox())
        assert max(r.attempts for r in backend.outbox()) >= 1

        sidecar = sandbox.start("backend", backend.port, http_port=http_port, grpc_port=grpc_port)
        wait_until(lambda: all(r.published_at for r in backend.outbox()), 30, message="outbox drained")
        assert backend.http.get("/readyz").status_code == 200

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
    sandbox.stop_all()
