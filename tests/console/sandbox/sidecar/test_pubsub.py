"""Pub/sub conformance: PublishEvent's envelope and errors, and delivery as daprd does it.

Behaviour sources (cited per test): docs.dapr.io pages, and dapr/dapr pkg/runtime/subscription,
components-contrib pubsub/envelope.go and common/component/kafka where the docs are silent.
"""

from __future__ import annotations

import json
import re
import threading
import time

import grpc
import pytest
from dapr.clients.exceptions import DaprGrpcError

from .helpers import (
    T,
    Sandbox,
    Sidecar,
    StubApp,
    topic_reader,
    wait_until,
)

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
    assert event["topic"] == T["pub"] and event["pubsubname"] == "kafka-pubsub"
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
    assert text["data"] == "plain words" and text["datacontenttype"] == "text/plain"
    assert binary["data_base64"] == "AAE=" and "data" not in binary
