"""Pub/sub conformance: PublishEvent's envelope and errors, and delivery as daprd does it.

Behaviour sources (cited per test): docs.dapr.io pages, and dapr/dapr pkg/runtime/subscription,
components-contrib pubsub/envelope.go and common/component/kafka where the docs are silent.
"""

from __future__ import annotations

import json
import re
import time

import grpc
import httpx
import pytest
from dapr.clients.exceptions import DaprGrpcError

from tests.utils.kafka_topics import topic_reader
from tests.utils.sidecars import Sandbox, Sidecar
from tests.utils.stub_apps import Request, StubApp
from tests.utils.waiting import wait_until

from .shared_resources import T

pytestmark = [pytest.mark.broker]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_publish_wraps_payload_in_daprs_cloudevent(sandbox: Sandbox, backend: Sidecar, backend_client) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-cloudevents/
    # (envelope fields) + components-contrib pubsub/envelope.go NewCloudEventsEnvelope
    with topic_reader(sandbox.bootstrap, T["pub"]) as reader:
        backend_client.publish_event("kafka-pubsub", T["pub"], json.dumps({"n": 1}),
                                     data_content_type="application/json",
                                     publish_metadata={"partitionKey": "task-42"})
        record = reader.by_key(b"task-42")[b"task-42"]
    event = json.loads(record.value)
    assert event["data"] == {"n": 1}
    assert event["datacontenttype"] == "application/json"
    assert event["source"] == "backend"
    assert event["type"] == "com.dapr.event.sent"
    assert event["specversion"] == "1.0"
    assert event["topic"] == T["pub"]
    assert event["pubsubname"] == "kafka-pubsub"
    assert re.fullmatch(r"[0-9a-f-]{36}", event["id"])
    assert event["traceid"] == event["traceparent"]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", event["traceparent"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", event["time"])
    # partitionKey becomes the Kafka key, metadata also travels as headers (Kafka component)
    assert record.key == b"task-42"
    assert ("partitionKey", b"task-42") in record.headers


def test_publish_text_and_binary_payloads(sandbox: Sandbox, backend_client) -> None:
    # envelope.go: text/plain (the default) keeps data as a string; octet-stream goes to data_base64
    with topic_reader(sandbox.bootstrap, T["pub"]) as reader:
        backend_client.publish_event("kafka-pubsub", T["pub"], "plain words", data_content_type="text/plain",
                                     publish_metadata={"partitionKey": "text"})
        backend_client.publish_event("kafka-pubsub", T["pub"], b"\x00\x01",
                                     data_content_type="application/octet-stream",
                                     publish_metadata={"partitionKey": "bin"})
        records = reader.by_key(b"text", b"bin")
    text, binary = json.loads(records[b"text"].value), json.loads(records[b"bin"].value)
    assert text["data"] == "plain words"
    assert text["datacontenttype"] == "text/plain"
    assert binary["data_base64"] == "AAE="
    assert "data" not in binary


def test_app_cloudevent_keeps_its_fields_and_gets_the_missing_ones(sandbox: Sandbox, backend: Sidecar) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-cloudevents/#publish-your-own-cloudevent
    # components-contrib FromCloudEvent: keeps id/type/source/time, sets topic+pubsubname, adds trace fields
    own = {"specversion": "1.0", "id": "evt-1", "type": "todo.task.created.v1", "source": "backend/tasks",
           "datacontenttype": "application/json", "data": {"task_id": "t1"}, "time": "2026-01-01T00:00:00Z"}
    # the backend's way: its own CloudEvent, partitionKey, traceparent + x-correlation-id as gRPC metadata
    headers = {"traceparent": TRACEPARENT, "x-correlation-id": "corr-123"}
    with topic_reader(sandbox.bootstrap, T["pub"]) as reader, backend.client(headers) as client:
        client.publish_event("kafka-pubsub", T["pub"], json.dumps(own),
                             data_content_type="application/cloudevents+json", publish_metadata={"partitionKey": "t1"})
        record = reader.by_key(b"t1")[b"t1"]
    event = json.loads(record.value)
    assert {k: event[k] for k in own} == own
    assert event["topic"] == T["pub"]
    assert event["pubsubname"] == "kafka-pubsub"
    # daprd's publish span is a child of the caller's: same trace id, new span id
    assert event["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert event["traceparent"] != TRACEPARENT
    assert event["traceid"] == event["traceparent"]
    # sandbox extension (README): the caller's correlation id rides along as a Kafka header
    assert ("x-correlation-id", b"corr-123") in record.headers


def test_cloudevent_metadata_overrides(sandbox: Sandbox, backend_client) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-cloudevents/#override-cloudevent-values
    with topic_reader(sandbox.bootstrap, T["pub"]) as reader:
        backend_client.publish_event("kafka-pubsub", T["pub"], b"{}", data_content_type="application/json",
                                     publish_metadata={"partitionKey": "ovr", "cloudevent.id": "fixed-id",
                                                       "cloudevent.type": "custom.type",
                                                       "cloudevent.source": "custom-src"})
        event = json.loads(reader.by_key(b"ovr")[b"ovr"].value)
    assert (event["id"], event["type"], event["source"]) == ("fixed-id", "custom.type", "custom-src")


def test_raw_payload_is_published_without_envelope(sandbox: Sandbox, backend_client) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-raw/
    with topic_reader(sandbox.bootstrap, T["pub"]) as reader:
        backend_client.publish_event("kafka-pubsub", T["pub"], b"not a cloud event",
                                     publish_metadata={"rawPayload": "true", "partitionKey": "raw"})
        record = reader.by_key(b"raw")[b"raw"]
    assert record.value == b"not a cloud event"
    headers = dict(record.headers)
    assert headers["rawPayload"] == b"true"
    assert headers["traceid"].startswith(b"00-")


def test_invalid_raw_payload_flag_is_rejected(backend_client) -> None:
    # dapr/dapr grpc.go validateAndGetPubsubAndTopic -> ERR_PUBSUB_REQUEST_METADATA, InvalidArgument
    with pytest.raises(DaprGrpcError) as err:
        backend_client.publish_event("kafka-pubsub", T["pub"], b"x", publish_metadata={"rawPayload": "maybe"})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rawPayload value must be a valid boolean" in err.value.details()
    assert err.value.error_code() == "DAPR_PUBSUB_METADATA_DESERIALIZATION"


def test_unknown_pubsub_and_empty_topic(backend_client) -> None:
    # dapr/dapr pkg/api/errors/pubsub.go NotFound / TopicEmpty: InvalidArgument
    with pytest.raises(DaprGrpcError) as err:
        backend_client.publish_event("nope", T["pub"], b"x")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "pubsub nope is not found"
    assert err.value.error_code() == "DAPR_PUBSUB_NOT_FOUND"
    with pytest.raises(DaprGrpcError) as err:
        backend_client.publish_event("kafka-pubsub", "", b"x")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "topic is empty in pubsub kafka-pubsub"


def test_a_publish_to_an_undeclared_topic_fails_and_creates_nothing(sandbox: Sandbox, backend: Sidecar,
                                                                    backend_client) -> None:
    # The cluster's Kafka has auto.create.topics.enable=false (kustomize/base todo-kafka), so sarama
    # (components-contrib common/component/kafka/producer.go SendMessage) fails with ErrUnknownTopicOrPartition,
    # retried by the outbound policy (here 2 retries) and returned as ERR_PUBSUB_PUBLISH_MESSAGE
    # (pkg/api/errors/pubsub.go PublishMessage); tansu would have created the topic on first use.
    from kafka import KafkaAdminClient

    from tests.utils.kafka_topics import create_topics

    topic = f"undeclared-{T['pub']}"
    with pytest.raises(DaprGrpcError) as err:
        backend_client.publish_event("kafka-pubsub", topic, b"{}", data_content_type="application/json")
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details() == (f"error when publishing to topic {topic} in pubsub kafka-pubsub: kafka server: "
                                   "Request was for a topic or partition that does not exist on this broker")
    over_http = httpx.post(f"{backend.http}/v1.0/publish/kafka-pubsub/{topic}", json={})
    assert over_http.status_code == 500
    assert over_http.json()["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
    admin = KafkaAdminClient(bootstrap_servers=sandbox.bootstrap)
    try:
        assert topic not in admin.list_topics()
    finally:
        admin.close()
    create_topics(sandbox.bootstrap, {topic: 1})  # declared now (a KafkaTopic in the cluster): it works
    backend_client.publish_event("kafka-pubsub", topic, b"{}", data_content_type="application/json")


def test_http_publish_endpoint(sandbox: Sandbox, backend: Sidecar) -> None:
    # https://docs.dapr.io/reference/api/pubsub_api/#publish-a-message-to-a-given-topic
    with topic_reader(sandbox.bootstrap, T["pub"]) as reader:
        resp = httpx.post(f"{backend.http}/v1.0/publish/kafka-pubsub/{T['pub']}?metadata.partitionKey=http",
                          json={"via": "http"})
        assert resp.status_code == 204
        event = json.loads(reader.by_key(b"http")[b"http"].value)
    assert event["data"] == {"via": "http"}
    resp = httpx.post(f"{backend.http}/v1.0/publish/nope/{T['pub']}", json={})
    assert resp.status_code == 404
    assert resp.json()["errorCode"] == "ERR_PUBSUB_NOT_FOUND"


# ---- delivery -------------------------------------------------------------------------------------
def test_delivery_posts_the_cloudevent_to_the_route(worker: Sidecar, worker_app: StubApp, backend: Sidecar) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/subscription-methods/
    # body = the CloudEvent as published, content-type application/cloudevents+json;
    # message metadata (Kafka headers, __key/__topic/...) arrive as HTTP headers (postman/http)
    with backend.client({"traceparent": TRACEPARENT, "x-correlation-id": "corr-9"}) as client:
        client.publish_event("kafka-pubsub", T["ok"], json.dumps({"hello": "worker"}),
                             data_content_type="application/json", publish_metadata={"partitionKey": "k1"})
    call = worker_app.wait_calls("/events/ok")[0]
    event = call.json()
    assert call.method == "POST"
    assert call.headers["content-type"] == "application/cloudevents+json"
    assert event["data"] == {"hello": "worker"}
    assert event["source"] == "backend"
    assert call.headers["__key"] == "k1"
    assert call.headers["__topic"] == T["ok"]
    assert call.headers["partitionkey"] == "k1"
    assert call.headers["pubsubname"] == "kafka-pubsub"
    assert call.headers["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert call.headers["x-correlation-id"] == "corr-9"  # sandbox extension via the Kafka header (README)


def _dlq_headers(record) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def test_failing_route_is_retried_then_dead_lettered_with_headers(
        sandbox: Sandbox, worker: Sidecar, worker_app: StubApp, backend_client) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-deadletter/
    # inbound policy here: 2 retries -> 3 deliveries, then the original message goes to the DLQ
    with topic_reader(sandbox.bootstrap, T["fail-dlq"]) as reader:
        backend_client.publish_event("kafka-pubsub", T["fail"], json.dumps({"n": 500}),
                                     data_content_type="application/json", publish_metadata={"partitionKey": "f1"})
        record = reader.by_key(b"f1")[b"f1"]
    assert len(worker_app.calls("/events/fail")) == 3
    event = json.loads(record.value)
    assert event["data"] == {"n": 500}
    assert event["topic"] == T["fail"]
    h = _dlq_headers(record)
    # what daprd itself carries over (message metadata of the original)
    assert h["__topic"] == T["fail"]
    assert h["__partition"] == "0"
    assert h["__key"] == "f1"
    assert h["pubsubName"] == "kafka-pubsub"
    assert "__offset" in h
    # the sandbox's explanation headers (README: dead-letter headers)
    assert h["x-dlq-original-topic"] == T["fail"]
    assert h["x-dlq-original-offset"] == h["__offset"]
    assert h["x-dlq-subscription"] == "worker-fail"
    assert h["x-dlq-app-id"] == "worker"
    assert h["x-dlq-reason"] == "failed"
    assert h["x-dlq-attempts"] == "3"
    assert h["x-dlq-status"] == "500"
    assert "boom" in h["x-dlq-error"]


def test_retry_status_is_retried_until_success(worker: Sidecar, worker_app: StubApp, backend_client) -> None:
    # https://docs.dapr.io/reference/api/pubsub_api/#expected-http-response : RETRY -> redelivered
    answers = iter([(200, {"status": "RETRY"}), (200, {"status": "RETRY"})])
    worker_app.routes["/events/retry"] = lambda r: next(answers, (200, {"status": "SUCCESS"}))
    backend_client.publish_event("kafka-pubsub", T["retry"], b"{}", data_content_type="application/json")
    calls = worker_app.wait_calls("/events/retry", 3)
    assert len({c.json()["id"] for c in calls}) == 1  # the same event, redelivered


def test_drop_and_404_are_not_retried_and_go_to_the_dead_letter_topic(
        sandbox: Sandbox, worker: Sidecar, worker_app: StubApp, backend_client) -> None:
    # DROP: warning logged, not retried; 404: error logged, not retried
    # (https://docs.dapr.io/reference/api/pubsub_api/#expected-http-response); since dapr/dapr#7097
    # daprd forwards dropped messages to the deadLetterTopic (pkg/runtime/subscription/subscription.go)
    with topic_reader(sandbox.bootstrap, T["drop-dlq"]) as drops, topic_reader(sandbox.bootstrap, T["nf-dlq"]) as nfs:
        backend_client.publish_event("kafka-pubsub", T["drop"], b"{}", data_content_type="application/json",
                                     publish_metadata={"partitionKey": "d"})
        backend_client.publish_event("kafka-pubsub", T["nf"], b"{}", data_content_type="application/json",
                                     publish_metadata={"partitionKey": "n"})
        dropped = _dlq_headers(drops.by_key(b"d")[b"d"])
        missing = _dlq_headers(nfs.by_key(b"n")[b"n"])
    assert len(worker_app.calls("/events/drop")) == 1
    assert len(worker_app.calls("/events/missing")) == 1
    assert dropped["x-dlq-reason"] == "dropped"
    assert dropped["x-dlq-attempts"] == "1"
    assert missing["x-dlq-reason"] == "dropped"
    assert missing["x-dlq-status"] == "404"
    assert any("DROP status returned from app" in line.get("msg", "") and line["level"] == "warning"
               for line in worker.logs())


def test_without_dead_letter_topic_the_message_is_retried_until_delivered(
        worker: Sidecar, worker_app: StubApp, backend_client) -> None:
    # No deadLetterTopic: daprd returns the error to the Kafka component, which retries the message
    failures = iter(range(5))  # more failures than the inbound policy's 3 attempts
    worker_app.routes["/events/nodlq"] = lambda r: (503, b"busy") if next(failures, None) is not None else (200, b"")
    backend_client.publish_event("kafka-pubsub", T["nodlq"], b"{}", data_content_type="application/json")
    calls = worker_app.wait_calls("/events/nodlq", 6)
    assert len({c.json()["id"] for c in calls}) == 1


def test_raw_payload_subscription_gets_a_wrapping_cloudevent(worker: Sidecar, worker_app: StubApp,
                                                             backend_client) -> None:
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-raw/#subscribing-to-raw-messages
    backend_client.publish_event("kafka-pubsub", T["raw"], b"\x01raw", publish_metadata={"rawPayload": "true"})
    event = worker_app.wait_calls("/events/raw")[0].json()
    assert event["data_base64"] == "AXJhdw=="
    assert event["datacontenttype"] == "application/octet-stream"
    assert event["source"] == "Dapr"
    assert event["type"] == "com.dapr.event.sent"
    assert event["topic"] == T["raw"]


def test_programmatic_subscription(worker: Sidecar, worker_app: StubApp, backend_client) -> None:
    # programmatic: GET /dapr/subscribe once the app listens (pkg/runtime/pubsub/subscriptions.go)
    # https://docs.dapr.io/developing-applications/building-blocks/pubsub/subscription-methods/
    backend_client.publish_event("kafka-pubsub", T["prog"], b"{}", data_content_type="application/json")
    worker_app.wait_calls("/events/prog")


def test_per_partition_order_is_preserved(worker: Sidecar, worker_app: StubApp, backend_client) -> None:
    # Kafka component: one partition is consumed in order; partitionKey picks the partition
    for i in range(20):
        backend_client.publish_event("kafka-pubsub", T["order"], json.dumps({"key": f"k{i % 4}", "i": i}),
                                     data_content_type="application/json",
                                     publish_metadata={"partitionKey": f"k{i % 4}"})
    calls = worker_app.wait_calls("/events/order", 20)
    seen: dict[str, list[int]] = {}
    for call in calls:
        data = call.json()["data"]
        seen.setdefault(data["key"], []).append(data["i"])
    assert all(v == sorted(v) for v in seen.values())
    assert sum(map(len, seen.values())) == 20


def test_offsets_are_committed_for_the_apps_consumer_group(sandbox: Sandbox, worker: Sidecar,
                                                           worker_app: StubApp, backend_client) -> None:
    # consumerGroup "{appID}" -> the app-id (FR-D06); committed only after the app answered
    from kafka import KafkaAdminClient, TopicPartition

    backend_client.publish_event("kafka-pubsub", T["ok"], b"{}", data_content_type="application/json",
                                 publish_metadata={"partitionKey": "commit"})
    wait_until(lambda: any(c.headers.get("__key") == "commit" for c in worker_app.calls("/events/ok")))
    admin = KafkaAdminClient(bootstrap_servers=sandbox.bootstrap)
    try:
        tp = TopicPartition(T["ok"], 0)

        def committed() -> int:
            return admin.list_consumer_group_offsets("worker", partitions=[tp])[tp].offset
        delivered = len(worker_app.calls("/events/ok"))
        wait_until(lambda: committed() >= delivered, 5, message="committed offset")
        assert committed() == delivered  # the one partition's next offset = messages handled
    finally:
        admin.close()


def test_a_message_in_retry_holds_back_only_its_partition(worker: Sidecar, worker_app: StubApp,
                                                          backend_client) -> None:
    # The Kafka component consumes each partition separately (sarama ConsumeClaim per partition):
    # a message being retried does not delay other topics/partitions. The stuck message is refused
    # until released, and the answer is decided by each request's arrival time (not by when the
    # handler runs), so a loaded machine cannot blur which delivery came after the release.
    released_at = [float("inf")]
    worker_app.routes["/events/nodlq"] = lambda r: (503, b"busy") if r.at < released_at[0] else (200, b"")

    def stuck_calls() -> list[Request]:
        return [c for c in worker_app.calls("/events/nodlq") if c.headers.get("__key") == "stuck"]

    backend_client.publish_event("kafka-pubsub", T["nodlq"], b"{}", data_content_type="application/json",
                                 publish_metadata={"partitionKey": "stuck"})
    wait_until(stuck_calls, message="the stuck message's first delivery")
    backend_client.publish_event("kafka-pubsub", T["ok"], b"{}", data_content_type="application/json",
                                 publish_metadata={"partitionKey": "free"})
    free = wait_until(lambda: [c for c in worker_app.calls("/events/ok") if c.headers.get("__key") == "free"])
    # Still being retried after the other message got through: it held back nothing but itself.
    wait_until(lambda: any(c.at > free[0].at for c in stuck_calls()), message="a retry after the free delivery")
    released_at[0] = time.monotonic()
    wait_until(lambda: any(c.at >= released_at[0] for c in stuck_calls()), 10, message="stuck message delivered")


def test_a_backlog_larger_than_the_fetch_buffer_is_delivered_whole(sandbox: Sandbox, worker: Sidecar,
                                                                   worker_app: StubApp) -> None:
    # More messages than the sidecar buffers per partition (it pauses the partition, then resumes):
    # every one must reach the app exactly once before its offset is committed. Found by the audit
    # completeness benchmark: 1,858 of 10,000 were committed without being delivered.
    from kafka import KafkaProducer

    count = 1500
    marker = f"bulk-{time.monotonic_ns()}"

    def slow_ok(_: object) -> tuple[int, bytes]:
        time.sleep(0.001)
        return 200, b""

    worker_app.routes["/events/ok"] = slow_ok
    producer = KafkaProducer(bootstrap_servers=sandbox.bootstrap, linger_ms=5)
    for i in range(count):
        event = {"specversion": "1.0", "id": f"{marker}-{i}", "source": "test", "type": "bulk", "data": {}}
        producer.send(T["ok"], json.dumps(event).encode(), key=marker.encode())
    producer.flush()
    producer.close()

    def ids() -> list[str]:
        return [c.json()["id"] for c in worker_app.calls("/events/ok") if c.headers.get("__key") == marker]

    wait_until(lambda: len(ids()) >= count, 60, 0.1, f"{count} deliveries")
    delivered = ids()
    assert sorted(delivered) == sorted(f"{marker}-{i}" for i in range(count))  # none lost, none twice
    assert delivered == [f"{marker}-{i}" for i in range(count)]  # and in order
