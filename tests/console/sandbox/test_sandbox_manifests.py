"""The manifest loader on fixture YAML, and on the real kustomize/base when it declares topics."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.sandbox.catalog import MANIFESTS_DIR
from console.sandbox.manifests import (
    ManifestError,
    SecretRef,
    load_manifests,
    parse_duration,
    topics_to_create,
)

from .conftest import FIXTURE_MANIFESTS, write_manifests

MORE = {
    "dapr.yaml": """
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: kafka-pubsub, namespace: todo-app}
        spec:
          type: pubsub.kafka
          version: v1
          metadata:
            - {name: brokers, value: "todo-kafka-kafka-bootstrap.kafka.svc:9092"}
            - {name: consumerGroup, value: "{appID}"}
            - {name: authRequired, value: false}
            - name: password
              secretKeyRef: {name: kafka-secret, key: pw}
        scopes: [backend, worker]
        ---
        apiVersion: dapr.io/v1alpha1
        kind: Resiliency
        metadata: {name: todo-resiliency}
        spec:
          policies:
            timeouts: {general: 5s}
            retries:
              pubsubRetry: {policy: exponential, maxInterval: 15s, maxRetries: 5}
            circuitBreakers:
              pubsubCB: {maxRequests: 1, interval: 8s, timeout: 45s, trip: consecutiveFailures > 8}
          targets:
            apps:
              backend: {timeout: general, retry: pubsubRetry}
            components:
              kafka-pubsub:
                inbound: {retry: pubsubRetry, circuitBreaker: pubsubCB}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: ignored}
        ---
        apiVersion: dapr.io/v1alpha1
        kind: Subscription
        metadata: {name: legacy}
        spec: {pubsubname: kafka-pubsub, topic: payments, route: /events/payments}
        """,
}


def test_loads_every_kind_and_ignores_the_rest(tmp_path: Path) -> None:
    root = write_manifests(tmp_path, {**FIXTURE_MANIFESTS, **MORE})
    m = load_manifests(root)

    topics = {t.name: t for t in m.topics}
    assert set(topics) == {"orders", "payments"}  # spec.topicName wins over metadata.name
    assert topics["orders"].partitions == 3 and topics["payments"].partitions == 1
    assert topics["orders"].configs == {"retention.ms": "604800000", "cleanup.policy": "delete"}
    assert topics["orders"].cluster == "todo-kafka"

    subs = {s.name: s for s in m.subscriptions}
    assert subs["shop-orders"].default_route == "/events/orders"
    assert subs["shop-orders"].dead_letter_topic == "orders-dlq"
    assert subs["shop-orders"].applies_to("shop") and not subs["shop-orders"].applies_to("other")
    assert subs["legacy"].default_route == "/events/payments" and subs["legacy"].applies_to("anyone")
    assert {s.name for s in m.subscriptions_for("shop")} == {"shop-orders", "legacy"}

    pubsub = m.component("kafka-pubsub")
    assert pubsub is not None and pubsub.type == "pubsub.kafka"
    assert pubsub.value("consumerGroup") == "{appID}" and pubsub.value("authRequired") == "false"
    assert pubsub.metadata["password"] == SecretRef("kafka-secret", "pw")
    assert pubsub.value("password") is None  # a secret reference is not an inline value
    assert m.components_of_type("pubsub.") == (pubsub,)

    (res,) = m.resiliencies
    assert res.timeouts == {"general": "5s"}
    assert res.retries["pubsubRetry"].policy == "exponential" and res.retries["pubsubRetry"].max_retries == 5
    assert res.circuit_breakers["pubsubCB"].trip == "consecutiveFailures > 8"
    assert res.apps["backend"].retry == "pubsubRetry"
    assert res.components_inbound["kafka-pubsub"].circuit_breaker == "pubsubCB"
    assert res.components_outbound == {}


def test_dead_letter_topics_are_added_once(fixture_manifests: Path) -> None:
    topics = {t.name: t.partitions for t in topics_to_create(load_manifests(fixture_manifests))}
    assert topics == {"orders": 3, "payments": 1, "orders-dlq": 1}


def test_declared_dead_letter_topic_keeps_its_declaration(tmp_path: Path) -> None:
    root = write_manifests(tmp_path, {
        "t.yaml": """
            apiVersion: kafka.strimzi.io/v1
            kind: KafkaTopic
            metadata: {name: orders-dlq}
            spec: {partitions: 2}
            ---
            apiVersion: dapr.io/v2alpha1
            kind: Subscription
            metadata: {name: s}
            spec: {pubsubname: p, topic: orders, routes: {default: /x}, deadLetterTopic: orders-dlq}
            """,
    })
    assert [(t.name, t.partitions) for t in topics_to_create(load_manifests(root))] == [("orders-dlq", 2)]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"bad.yaml": "a: [unclosed\n"}, "bad.yaml: not valid YAML"),
        ({"a.yaml": "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata: {name: x}\n",
          "b.yaml": "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata: {name: x}\n"},
         "declared twice"),
        ({"s.yaml": "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
                    "spec: {pubsubname: p, topic: t}\n"}, "no route"),
        ({"t.yaml": "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata: {name: x}\n"
                    "spec: {partitions: three}\n"}, "expected an integer"),
    ],
)
def test_bad_manifests_name_the_file(tmp_path: Path, files: dict[str, str], message: str) -> None:
    write_manifests(tmp_path, files)
    with pytest.raises(ManifestError, match=message):
        load_manifests(tmp_path)


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifests(tmp_path / "nope")


@pytest.mark.parametrize(("text", "seconds"), [("5s", 5), ("1m30s", 90), ("250ms", 0.25), ("2h", 7200), ("0", 0)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(ManifestError):
        parse_duration("5 seconds")


def test_real_kustomize_base_declares_the_contract_topics() -> None:
    """The topics and DLQs of CONTRIBUTING.md, read from the real manifests."""
    if not MANIFESTS_DIR.is_dir() or not load_manifests(MANIFESTS_DIR).topics:
        pytest.skip("kustomize/base has no KafkaTopic manifests yet (written by the manifests engineer)")
    m = load_manifests(MANIFESTS_DIR)
    topics = {t.name: t.partitions for t in topics_to_create(m)}
    assert topics == {
        "task-events": 3, "reminders": 1, "task-updates": 3,
        "task-events-dlq": 1, "reminders-dlq": 1, "task-updates-dlq": 1,
    }
    if m.subscriptions:
        assert {s.dead_letter_topic for s in m.subscriptions} <= set(topics)
        assert all(s.pubsub == "kafka-pubsub" for s in m.subscriptions)
    pubsub = m.component("kafka-pubsub")
    if pubsub is not None:
        assert pubsub.type == "pubsub.kafka"
