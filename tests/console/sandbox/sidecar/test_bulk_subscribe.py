"""Bulk subscribe conformance: batches per partition, daprd's HTTP bulk envelope and per-entry statuses.

Behaviour sources (cited per test): https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-bulk/,
dapr/dapr pkg/runtime/subscription (bulksubscription.go, bulkresiliency.go, postman/http/http.go
DeliverBulk), pkg/runtime/pubsub/bulksubscribe_events.go, and components-contrib
common/component/kafka/consumer.go (per-claim batching, entry ids, component retry).
A sidecar of its own ("bulker") with its own Subscriptions shares the session's broker.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition

from console.sandbox.sidecar.bulk import parse_statuses
from console.sandbox.sidecar.resources import BulkSubscribe
from tests.utils.kafka_topics import create_topics, topic_reader
from tests.utils.sidecars import Sandbox, Sidecar, make_sandbox
from tests.utils.stub_apps import Request, StubApp, start_app
from tests.utils.waiting import wait_until

from .shared_resources import RUN, kafka_pubsub_component

B = {name: f"bulk-{name}-{RUN}" for name in (
    "env", "count", "await", "status", "status-dlq", "fail", "fail-dlq", "nodlq", "commit", "order", "prog", "mixed", "mixed-dlq", "raw")}
APP_ID = "bulker"
pytestmark = [pytest.mark.broker]


def _sub(name: str, max_count: int, max_await_ms: int, dlq: str | None = None, extra: str = "") -> str:
    dlq_line = f"\n          deadLetterTopic: {B[dlq]}" if dlq else ""
    return f"""
        apiVersion: dapr.io/v2alpha1
        kind: Subscription
        metadata: {{name: bulk-{name}}}
        spec:
          pubsubname: kafka-pubsub
          topic: {B[name]}
          routes: {{default: /bulk/{name}}}
          bulkSubscribe: {{enabled: true, maxMessagesCount: {max_count}, maxAwaitDurationMs: {max_await_ms}}}{dlq_line}{extra}
        scopes: [{APP_ID}]
        """


DOCS = {
    "components.yaml": kafka_pubsub_component("{name: initialOffset, value: oldest}",
                                              "{name: consumeRetryInterval, value: 100ms}"),
    "resiliency.yaml": """
        apiVersion: dapr.io/v1alpha1
        kind: Resiliency
        metadata: {name: bulk-resiliency}
        spec:
          policies:
            retries:
              inbound: {policy: constant, duration: 50ms, maxRetries: 2}
          targets:
            components:
              kafka-pubsub:
                inbound: {retry: inbound}
        """,
    "subscriptions.yaml": "---".join([
        _sub("env", 3, 2000),
        _sub("count", 4, 3000),
        _sub("await", 100, 800),
        _sub("status", 5, 1000, "status-dlq"),
        _sub("fail", 3, 300, "fail-dlq"),
        _sub("nodlq", 2, 300),
        _sub("commit", 3, 300),
        _sub("order", 7, 200),
        _sub("raw", 2, 300, extra='\n          metadata: {rawPayload: "true"}'),
        _sub("mixed", 4, 500, "mixed-dlq"),
    ]),
}


def _all_success(req: Request) -> tuple[int, Any]:
    return 200, {"statuses": [{"entryId": e["entryId"], "status": "SUCCESS"} for e in req.json()["entries"]]}


@pytest.fixture(scope="module")
def bulk_app() -> Iterator[StubApp]:
    app = start_app({
        "/dapr/subscribe": (200, [{"pubsubname": "kafka-pubsub", "topic": B["prog"], "route": "/bulk/prog",
                                   "bulkSubscribe": {"enabled": True, "maxMessagesCount": 2,
                                                     "maxAwaitDurationMs": 300}}]),
        **{f"/bulk/{name}": _all_success for name in B},
    })
    yield app
    app.stop()


@pytest.fixture(scope="module")
def bulk_sandbox(broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    create_topics(broker.bootstrap, {t: 3 if name == "order" else 1 for name, t in B.items()})
    sb = make_sandbox(tmp_path_factory.mktemp("bulk-sandbox"), broker.bootstrap, DOCS)
    yield sb
    sb.stop_all()


@pytest.fixture(scope="module")
def bulker(bulk_sandbox: Sandbox, bulk_app: StubApp) -> Sidecar:
    return bulk_sandbox.start(APP_ID, bulk_app.port)


def _event(data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id or str(uuid.uuid4()), "source": "test", "type": "bulk.test",
            "datacontenttype": "application/json", "data": data}


def _produce(sandbox: Sandbox, topic: str, events: list[tuple[str, dict[str, Any] | bytes]],
             headers: list[tuple[str, bytes]] | None = None) -> float:
    """Send (key, CloudEvent or raw bytes) pairs in one flush; returns when acknowledged (monotonic)."""
    producer = KafkaProducer(bootstrap_servers=sandbox.bootstrap, linger_ms=5)
    try:
        for key, event in events:
            value = event if isinstance(event, bytes) else json.dumps(event).encode()
            producer.send(topic, value, key=key.encode(), headers=headers or [])
        producer.flush()
    finally:
        producer.close()
    return time.monotonic()


def _entries(calls: list[Request]) -> list[list[dict[str, Any]]]:
    return [c.json()["entries"] for c in calls]


def _data(calls: list[Request], field: str) -> list[list[Any]]:
    return [[e["event"]["data"][field] for e in entries] for entries in _entries(calls)]


def _headers(record: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


# ---- unit: settings and the app's answer --------------------------------------------------------
def test_bulk_settings_defaults_are_the_kafka_components() -> None:
    # components-contrib pubsub/kafka BulkSubscribe: GetIntValOrDefault(..., DefaultMaxBulkSubCount=80,
    # DefaultMaxBulkSubAwaitDurationMs=10000) (common/component/kafka/utils.go); 0 means default
    assert BulkSubscribe.parse(None) == BulkSubscribe(False, 80, 10_000)
    assert BulkSubscribe.parse({"enabled": True}) == BulkSubscribe(True, 80, 10_000)
    assert BulkSubscribe.parse({"enabled": True, "maxMessagesCount": 0, "maxAwaitDurationMs": 250}) == \
        BulkSubscribe(True, 80, 250)
    assert BulkSubscribe.parse({"enabled": False, "maxMessagesCount": 5}).enabled is False


def test_app_answer_is_decoded_as_daprd_does() -> None:
    # postman/http DeliverBulk: json.Decoder into AppBulkResponse{statuses: [{entryId, status}]};
    # Go matches keys case-insensitively; a decode error fails every entry
    assert parse_statuses(b'{"Statuses": [{"EntryId": "0", "status": "DROP"}, {"entryId": "1"}]}') == \
        {"0": "DROP", "1": ""}
    assert parse_statuses(b"null") == {}
    assert parse_statuses(b"{}") == {}
    for bad in (b"", b"ok", b"[]", b'{"statuses": {}}', b'{"statuses": [{"entryId": 0}]}'):
        with pytest.raises((ValueError, TypeError)):
            parse_statuses(bad)


# ---- delivery ------------------------------------------------------------------------------------
def test_bulk_envelope_matches_daprd(bulk_sandbox: Sandbox, bulker: Sidecar, bulk_app: StubApp) -> None:
    # bulksubscribe_events.go NewBulkSubscribeEnvelope + BulkSubscribeMessageItem; Kafka entry ids are
    # the index in the batch (consumer.go doBulkCallback); entries carry the Kafka metadata, the
    # top-level metadata (and HTTP headers) the bulk message's {pubsubName}
    events = [_event({"n": i}) for i in range(3)]
    _produce(bulk_sandbox, B["env"], [(f"e{i}", ev) for i, ev in enumerate(events)],
             headers=[("x-correlation-id", b"corr-bulk")])
    call = bulk_app.wait_calls("/bulk/env")[0]
    body = call.json()
    assert call.method == "POST"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["pubsubname"] == "kafka-pubsub"
    assert set(body) == {"id", "type", "topic", "pubsubname", "metadata", "entries"}
    assert body["type"] == "com.dapr.event.sent.bulk"
    assert len(body["id"]) == 36
    assert body["topic"] == B["env"]
    assert body["pubsubname"] == "kafka-pubsub"
    assert body["metadata"] == {"pubsubName": "kafka-pubsub"}
    assert [e["entryId"] for e in body["entries"]] == ["0", "1", "2"]
    for i, entry in enumerate(body["entries"]):
        assert set(entry) == {"entryId", "event", "metadata", "contentType"}
        assert entry["event"] == events[i]  # the CloudEvent as a JSON object, not a string
        assert entry["contentType"] == "application/cloudevents+json"
        md = entry["metadata"]
        assert md["__key"] == f"e{i}"
        assert md["__topic"] == B["env"]
        assert md["__partition"] == "0"
        assert md["__offset"] == str(i)
        assert md["__timestamp"].isdigit()
        assert md["x-correlation-id"] == "corr-bulk"
        assert "pubsubName" not in md


def test_batches_are_bounded_by_max_messages_count(bulk_sandbox: Sandbox, bulker: Sidecar,
                                                   bulk_app: StubApp) -> None:
    # consumer.go: a claim's batch is flushed as soon as it holds maxMessagesCount messages (4 here),
    # the rest waits for more or for maxAwaitDurationMs (3 s here)
    sent_at = _produce(bulk_sandbox, B["count"], [("c", _event({"i": i})) for i in range(9)])
    calls = bulk_app.wait_calls("/bulk/count", 3, timeout=15)
    assert _data(calls, "i") == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]
    assert calls[1].at - sent_at < 1.5  # full batches go at once
    assert calls[2].at - sent_at >= 2.5  # the partial one waited for maxAwaitDurationMs


def test_a_partial_batch_is_delivered_after_max_await_duration(bulk_sandbox: Sandbox, bulker: Sidecar,
                                                               bulk_app: StubApp) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-bulk/ : maxAwaitDurationMs
    # bounds how long messages wait for a batch to fill (800 ms here; maxMessagesCount 100)
    sent_at = _produce(bulk_sandbox, B["await"], [("a", _event({"i": i})) for i in range(3)])
    call = bulk_app.wait_calls("/bulk/await", timeout=10)[0]
    assert _data([call], "i") == [[0, 1, 2]]
    assert 0.6 <= call.at - sent_at < 2.5


def test_per_entry_statuses_retry_drop_and_dead_letter(bulk_sandbox: Sandbox, bulker: Sidecar,
                                                       bulk_app: StubApp) -> None:
    # postman/http DeliverBulk: SUCCESS acks; RETRY, a missing entry and an unknown status ("success"
    # is case-sensitive) fail the entry; DROP acks it and dead-letters it. bulkresiliency.go: a retry
    # re-sends only the failed entries. bulksubscription.go: once the policy (3 attempts) gives up,
    # the failed entries go to the deadLetterTopic.
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def answer(req: Request) -> tuple[int, Any]:
        statuses = []
        for entry in req.json()["entries"]:
            want = entry["event"]["data"]["want"]
            with lock:
                seen[want] = seen.get(want, 0) + 1
                first = seen[want] == 1
            status = {"ok": "SUCCESS", "drop": "DROP", "never": "success",
                      "retry": "RETRY" if first else "SUCCESS", "omit": None if first else "SUCCESS"}[want]
            if status is not None:
                statuses.append({"entryId": entry["entryId"], "status": status})
        return 200, {"statuses": statuses}

    bulk_app.routes["/bulk/status"] = answer
    wants = ["ok", "retry", "omit", "drop", "never"]
    with topic_reader(bulk_sandbox.bootstrap, B["status-dlq"]) as dlq:
        _produce(bulk_sandbox, B["status"], [(w, _event({"want": w})) for w in wants])
        records = dlq.by_key(b"drop", b"never", timeout=15)
    calls = bulk_app.calls("/bulk/status")
    assert _data(calls, "want") == [wants, ["retry", "omit", "never"], ["never"]]
    assert len({c.json()["id"] for c in calls}) == 1  # retries re-send the same envelope, filtered
    assert {r.key for r in dlq.records} == {b"drop", b"never"}  # nothing acknowledged was dead-lettered
    dropped, failed = _headers(records[b"drop"]), _headers(records[b"never"])
    assert json.loads(records[b"never"].value)["data"] == {"want": "never"}  # the original bytes
    for h, key in ((dropped, "drop"), (failed, "never")):  # the single-delivery DLQ headers (README)
        assert h["__key"] == key
        assert h["__topic"] == B["status"]
        assert h["pubsubName"] == "kafka-pubsub"
        assert h["x-dlq-original-topic"] == B["status"]
        assert h["x-dlq-original-offset"] == h["__offset"]
        assert h["x-dlq-subscription"] == "bulk-status"
        assert h["x-dlq-app-id"] == APP_ID
        assert h["x-dlq-consumer-group"] == APP_ID
        assert h["x-dlq-status"] == "200"
    assert dropped["x-dlq-reason"] == "dropped"
    assert dropped["x-dlq-attempts"] == "1"
    assert failed["x-dlq-reason"] == "failed"
    assert failed["x-dlq-attempts"] == "3"
    assert "unknown status" in failed["x-dlq-error"]


def test_a_non_2xx_answer_fails_every_entry(bulk_sandbox: Sandbox, bulker: Sidecar, bulk_app: StubApp) -> None:
    # postman/http DeliverBulk: any non-2xx (but 404) is a retriable error for all the entries sent;
    # retried by the inbound policy, then dead-lettered when it gives up
    calls_per_envelope: dict[str, int] = {}

    def answer(req: Request) -> tuple[int, Any]:
        body = req.json()
        n = calls_per_envelope[body["id"]] = calls_per_envelope.get(body["id"], 0) + 1
        mode = body["entries"][0]["event"]["data"]["mode"]
        return (500, b"boom") if mode == "broken" or n == 1 else _all_success(req)

    bulk_app.routes["/bulk/fail"] = answer
    _produce(bulk_sandbox, B["fail"], [("flaky", _event({"mode": "flaky", "i": i})) for i in range(2)])
    calls = bulk_app.wait_calls("/bulk/fail", 2)
    assert _data(calls, "i") == [[0, 1], [0, 1]]
    assert calls[0].json()["id"] == calls[1].json()["id"]
    with topic_reader(bulk_sandbox.bootstrap, B["fail-dlq"]) as dlq:
        _produce(bulk_sandbox, B["fail"], [("broken", _event({"mode": "broken", "i": i})) for i in range(2)])
        records = dlq.wait(lambda rs: len(rs) >= 2, 15, "2 dead letters")
    assert len(bulk_app.calls("/bulk/fail")) == 2 + 3
    assert all(r.key == b"broken" for r in dlq.records)  # the flaky batch was acknowledged
    assert sorted(json.loads(r.value)["data"]["i"] for r in records) == [0, 1]
    h = _headers(records[0])
    assert h["x-dlq-reason"] == "failed"
    assert h["x-dlq-attempts"] == "3"
    assert h["x-dlq-status"] == "500"
    assert "boom" in h["x-dlq-error"]


def test_without_dead_letter_topic_the_component_redelivers_the_whole_batch(
        bulk_sandbox: Sandbox, bulker: Sidecar, bulk_app: StubApp) -> None:
    # bulksubscription.go returns the error when no DLQ is configured; the Kafka component's
    # flushBulkMessages then retries doBulkCallback with the same messages: every entry, including
    # the ones the app already acknowledged, in a new envelope
    seen = {"bad": 0}

    def answer(req: Request) -> tuple[int, Any]:
        statuses = []
        for entry in req.json()["entries"]:
            if entry["event"]["data"]["k"] == "bad":
                seen["bad"] += 1
                statuses.append({"entryId": entry["entryId"], "status": "RETRY" if seen["bad"] <= 3 else "SUCCESS"})
            else:
                statuses.append({"entryId": entry["entryId"], "status": "SUCCESS"})
        return 200, {"statuses": statuses}

    bulk_app.routes["/bulk/nodlq"] = answer
    _produce(bulk_sandbox, B["nodlq"], [("n", _event({"k": "good"})), ("n", _event({"k": "bad"}))])
    calls = bulk_app.wait_calls("/bulk/nodlq", 4, timeout=15)
    assert _data(calls, "k") == [["good", "bad"], ["bad"], ["bad"], ["good", "bad"]]
    ids = [c.json()["id"] for c in calls]
    assert ids[0] == ids[1] == ids[2] != ids[3]


def test_offsets_are_committed_only_after_the_whole_batch(bulk_sandbox: Sandbox, bulker: Sidecar,
                                                          bulk_app: StubApp) -> None:
    # consumer.go marks a batch's messages only after the handler returned; here the commit waits
    # for every entry of the batch to be settled
    release = threading.Event()

    def answer(req: Request) -> tuple[int, Any]:
        release.wait(20)
        return _all_success(req)

    bulk_app.routes["/bulk/commit"] = answer
    admin = KafkaAdminClient(bootstrap_servers=bulk_sandbox.bootstrap)
    tp = TopicPartition(B["commit"], 0)

    def committed() -> int:
        found = admin.list_consumer_group_offsets(APP_ID, partitions=[tp]).get(tp)
        return found.offset if found is not None else -1

    try:
        _produce(bulk_sandbox, B["commit"], [("c", _event({"i": i})) for i in range(3)])
        bulk_app.wait_calls("/bulk/commit")
        time.sleep(0.5)  # several poll/commit cycles of the consumer
        assert committed() <= 0  # nothing of the batch in flight is committed
        release.set()
        wait_until(lambda: committed() == 3, 5, message="batch committed")
    finally:
        release.set()
        admin.close()


def test_order_within_a_partition_is_preserved(bulk_sandbox: Sandbox, bulker: Sidecar, bulk_app: StubApp) -> None:
    # Kafka component: batches are formed per partition claim, one at a time, in offset order
    events: list[tuple[str, dict[str, Any] | bytes]] = [
        (f"k{i % 4}", _event({"key": f"k{i % 4}", "i": i})) for i in range(40)]
    _produce(bulk_sandbox, B["order"], events)

    def delivered() -> list[dict[str, Any]]:
        return [e["event"]["data"] for entries in _entries(bulk_app.calls("/bulk/order")) for e in entries]

    wait_until(lambda: len(delivered()) >= 40, 10, message="40 entries")
    data = delivered()
    assert sorted(d["i"] for d in data) == list(range(40))  # each once
    assert all(len(entries) <= 7 for entries in _entries(bulk_app.calls("/bulk/order")))
    per_key: dict[str, list[int]] = {}
    for d in data:
        per_key.setdefault(d["key"], []).append(d["i"])
    assert all(v == sorted(v) for v in per_key.values())
    for entries in _entries(bulk_app.calls("/bulk/order")):  # a batch never mixes partitions
        assert len({e["metadata"]["__partition"] for e in entries}) == 1


def test_programmatic_subscription_with_bulk_subscribe(bulk_sandbox: Sandbox, bulker: Sidecar,
                                                       bulk_app: StubApp) -> None:
    # GET /dapr/subscribe items accept bulkSubscribe (daprd SubscriptionJSON.BulkSubscribe)
    _produce(bulk_sandbox, B["prog"], [("p", _event({"i": i})) for i in range(3)])
    calls = bulk_app.wait_calls("/bulk/prog", 2)
    assert _data(calls, "i") == [[0, 1], [2]]


def test_undeliverable_entries_are_dead_lettered_and_the_rest_delivered(
        bulk_sandbox: Sandbox, bulker: Sidecar, bulk_app: StubApp) -> None:
    # bulksubscription.go: an entry that does not unmarshal fails (dead-lettered with the failed ones);
    # expired events are dead-lettered and acknowledged; only the rest is sent to the app
    expired = {**_event({"i": 2}), "expiration": "2000-01-01T00:00:00Z"}
    with topic_reader(bulk_sandbox.bootstrap, B["mixed-dlq"]) as dlq:
        _produce(bulk_sandbox, B["mixed"], [("ok", _event({"i": 0})), ("bad", b"{not json"), ("expired", expired)])
        records = dlq.by_key(b"bad", b"expired", timeout=15)
    calls = bulk_app.wait_calls("/bulk/mixed")
    assert len(calls) == 1
    assert [e["entryId"] for e in calls[0].json()["entries"]] == ["0"]
    bad, old = (_headers(records[k]) for k in (b"bad", b"expired"))
    assert records[b"bad"].value == b"{not json"
    assert bad["x-dlq-reason"] == "failed"
    assert bad["x-dlq-attempts"] == "0"
    assert "deserializing" in bad["x-dlq-error"]
    assert old["x-dlq-reason"] == "dropped"
    assert old["x-dlq-error"] == "expired"
    assert b"ok" not in {r.key for r in dlq.records}


def test_raw_payload_entries_carry_base64_bytes(bulk_sandbox: Sandbox, bulker: Sidecar, bulk_app: StubApp) -> None:
    # bulksubscription.go, rawPayload: the entry's event is the message base64-encoded, contentType
    # application/octet-stream (Kafka entries have none)
    _produce(bulk_sandbox, B["raw"], [("r", b"\x01raw"), ("r", b"plain")])
    entries = bulk_app.wait_calls("/bulk/raw")[0].json()["entries"]
    assert [(e["entryId"], e["event"], e["contentType"]) for e in entries] == \
        [("0", "AXJhdw==", "application/octet-stream"), ("1", "cGxhaW4=", "application/octet-stream")]
