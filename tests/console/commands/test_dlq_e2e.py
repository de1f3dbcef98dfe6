"""Dead letters end to end, through the real dev sidecar and broker and the real `todo-console dlq` commands.

A worker (a stub app behind the real sidecar, reading the Subscriptions and Resiliency of kustomize/base)
rejects an event with HTTP 500; after the retries the sidecar dead-letters it to task-events-dlq. `dlq show`
gives the reason; once the worker is fixed, `dlq redrive` (dry run first) sends it back to task-events and the
worker handles it exactly once, with its headers and a redrive count; a second redrive is refused; `purge`
says what it did (tansu cannot delete records, so they are marked handled).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from console.model.kafka import OutgoingRecord, TopicPartition
from console.sandbox.broker import BrokerError, external_broker, start_tansu
from console.sandbox.manifests import load_manifests, topics_to_create
from console.sandbox.sidecar.bulk import BULK_EVENT_TYPE
from console.sandbox.topics import ensure_topics
from console.sources.dead_letters import DeadLetters
from console.sources.kafka import KafkaSource
from console.sources.wiring import rendered_wiring
from services.platform.events import CloudEvent
from tests.console.commands.conftest import Console
from tests.utils.dapr_apps import BASE, Ports, mesh
from tests.utils.events import snapshot, task_event
from tests.utils.required import missing
from tests.utils.stub_apps import Request, StubApp, start_app
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]
DLQ, TOPIC, ROUTE = "task-events-dlq", "task-events", "/events/task-events"


@dataclass
class Worker:
    """The consumer: rejects every event with 500 until fixed, then accepts and remembers what it handled.
    The worker bulk-subscribes task-events (kustomize/base), so it answers daprd's bulk envelope as the
    real worker does, a status per entry; an entry's Kafka headers come in its `metadata`."""

    fixed: bool = False
    handled: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)  # (headers, event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> tuple[int, object]:
        if not self.fixed:
            return 500, {"error": "cannot parse the recurrence rule"}
        body = request.json()
        bulk = body.get("type") == BULK_EVENT_TYPE
        with self.lock:
            self.handled += ([(e.get("metadata") or {}, e["event"]) for e in body["entries"]] if bulk
                             else [(dict(request.headers), body)])
        if bulk:
            return 200, {"statuses": [{"entryId": e["entryId"], "status": "SUCCESS"} for e in body["entries"]]}
        return 200, b""

    def handled_ids(self) -> list[str]:
        with self.lock:
            return [event["id"] for _, event in self.handled]


@dataclass
class Setup:
    bootstrap: str
    worker: Worker
    app: StubApp


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A broker of its own (other suites' dead letters would mix in), the topics of kustomize/base and the
    worker's sidecar."""
    root = tmp_path_factory.mktemp("dlq-e2e")
    if os.environ.get("KAFKA_BOOTSTRAP"):
        broker = external_broker(os.environ["KAFKA_BOOTSTRAP"])
    else:
        try:
            broker = start_tansu(root / "broker")
        except BrokerError as exc:
            missing(f"no Kafka-protocol broker (install the 'sandbox' extra): {exc}")
    ensure_topics(broker.bootstrap, topics_to_create(load_manifests(BASE)))
    worker = Worker()
    app = start_app({ROUTE: worker})
    try:
        with mesh(root / "mesh", broker.bootstrap) as dapr:
            dapr.sidecar("worker", Ports(app=app.port))
            yield Setup(broker.bootstrap, worker, app)
    finally:
        app.stop()
        broker.stop()


def publish(setup: Setup, event: CloudEvent) -> None:
    """The record a Dapr publish with partitionKey and x-correlation-id metadata writes (both become headers)."""
    key = (event.subject or "").encode()
    with KafkaSource(setup.bootstrap) as source:
        source.produce(TOPIC, [OutgoingRecord(event.model_dump_json(exclude_none=True).encode(), key,
                                              (("partitionKey", key), ("x-correlation-id", b"corr-42")))])


def dead_lettered(bootstrap: str, event_id: str) -> Callable[[], bool]:
    dead = DeadLetters(KafkaSource(bootstrap), rendered_wiring())

    def check() -> bool:
        return any(d.event_id == event_id for d in dead.browse(DLQ, limit=1000))
    return check


def test_a_rejected_event_is_shown_redriven_once_refused_twice_and_purged(
        setup: Setup, console_at: Callable[[str], Console]) -> None:
    console = console_at(setup.bootstrap)
    event = task_event("created", snapshot(owner="dora"))
    publish(setup, event)
    wait_until(dead_lettered(setup.bootstrap, event.id), 90, 0.5, "the rejected event in task-events-dlq")
    assert event.id not in setup.worker.handled_ids()

    # show: the message, where it came from and why it failed
    shown = console("dlq", "show", DLQ, "--id", event.id, "--json")
    assert shown.code == 0, shown.err
    (message,) = shown.json()["messages"]
    assert message["reason"].startswith("failed (HTTP 500)")
    assert "cannot parse the recurrence rule" in message["reason"]
    assert (message["app_id"], message["original"]["topic"], message["state"]) == ("worker", TOPIC, "waiting")
    assert (message["event_id"], message["type"], message["key"]) == (event.id, event.type, event.subject)
    assert message["cloudevent"]["data"]["entity_id"] == event.data["entity_id"]
    assert message["headers"]["x-correlation-id"] == "corr-42"
    table = console("dlq", "show", DLQ)
    assert event.id in table.out
    assert "failed (HTTP 500)" in table.out
    detail = console("dlq", "show", DLQ, "--id", event.id)
    assert f"from          {TOPIC}[" in detail.out

    listed = console("dlq", "list", "--json")
    assert listed.code == 1  # a dead letter waits for a decision
    row = next(d for d in listed.json()["dlqs"] if d["topic"] == DLQ)
    assert (row["waiting"], row["apps"], row["original_topics"]) == (1, ["audit", "worker"], [TOPIC])
    assert row["oldest_waiting_age_s"] >= 0

    # the consumer is fixed; a dry run first, which changes nothing
    setup.worker.fixed = True
    source = KafkaSource(setup.bootstrap)
    ends = source.partition_offsets([TopicPartition(TOPIC, p) for p in range(3)])
    dry = console("dlq", "redrive", DLQ, "--id", event.id, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    (planned,) = dry.json()["items"]
    assert (planned["action"], planned["target_topic"], planned["redrive_count"]) == ("redrive", TOPIC, 1)
    assert dry.json()["dry_run"] is True
    assert source.partition_offsets(list(ends)) == ends  # nothing was produced

    done = console("dlq", "redrive", DLQ, "--id", event.id, "--yes", "--json")
    assert done.code == 0, done.err
    (item,) = done.json()["items"]
    assert item["outcome"] == "redriven"
    target = TopicPartition(TOPIC, planned["target_partition"])
    assert item["target_offset"] >= ends[target].end

    # handled exactly once: wait until the worker's group committed past the redriven record
    def committed_past() -> bool:
        offsets, _ = source.committed_offsets(["worker"])["worker"]
        return offsets.get(target, -1) > item["target_offset"]
    wait_until(committed_past, 60, 0.2, "the worker's commit past the redriven record")
    assert setup.worker.handled_ids().count(event.id) == 1
    (headers, handled) = next((h, e) for h, e in setup.worker.handled if e["id"] == event.id)
    assert headers["x-todo-redrive-count"] == "1"
    assert headers["x-correlation-id"] == "corr-42"
    assert handled["data"] == event.data

    # a second redrive of the same dead letter is refused, and says why
    again = console("dlq", "redrive", DLQ, "--id", event.id, "--yes", "--json")
    assert again.code == 1
    (refused,) = again.json()["items"]
    assert refused["action"] == "refuse"
    assert refused["reason"].startswith(f"already redriven to {TOPIC}[{target.partition}]@{item['target_offset']}")
    assert setup.worker.handled_ids().count(event.id) == 1
    assert console("dlq", "show", DLQ, "--id", event.id, "--json").json()["messages"][0]["state"] == "redriven"

    # purge, and the command says which way it went
    assert console("dlq", "purge", DLQ, "--all", "--readonly").code == 2
    purged = console("dlq", "purge", DLQ, "--all", "--yes", "--json")
    assert purged.code == 0, purged.err
    result = purged.json()
    if os.environ.get("KAFKA_BOOTSTRAP"):
        assert result["mode"] == "deleted"
    else:
        assert result["mode"] == "marked"
        assert "marked handled (committed offsets of group todo-console-dlq)" in result["detail"]
        assert "closed the connection on DeleteRecords" in result["detail"]
    assert result["count"] >= 1
    after = next(d for d in console("dlq", "list", "--json").json()["dlqs"] if d["topic"] == DLQ)
    assert (after["pending"], after["waiting"]) == (0, 0)
    assert console("dlq", "show", DLQ, "--json").json()["messages"] == []
    if result["mode"] == "marked":  # still in the log, shown as such
        kept = console("dlq", "show", DLQ, "--all-records", "--json").json()["messages"]
        assert {m["state"] for m in kept} == {"purged"}
    assert console("dlq", "purge", DLQ, "--all", "--yes").out.strip() == "nothing to purge"
    source.close()


def test_mutations_refuse_bad_input_and_read_only_mode(setup: Setup, console_at: Callable[[str], Console]) -> None:
    console = console_at(setup.bootstrap)
    readonly = console("dlq", "redrive", DLQ, "--all", "--readonly")
    assert (readonly.code, readonly.err.count("\n")) == (2, 1)
    assert "refused, the console is read-only" in readonly.err
    assert "say which dead letters" in console("dlq", "redrive", DLQ, "--yes").err
    unknown = console("dlq", "show", "no-such-dlq")
    assert unknown.code == 2
    assert "no-such-dlq is not a dead-letter topic of any Subscription" in unknown.err
    missing_id = console("dlq", "redrive", DLQ, "--id", "nope", "--yes")
    assert (missing_id.code, missing_id.err.strip()) == (2, f"todo-console dlq: no dead letter nope in {DLQ}")
    assert console("dlq", "redrive", DLQ, "--all", "--yes").out.strip() == "nothing to redrive"
