"""The manifest loader on fixture YAML, and on the real kustomize/base when it declares topics."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.sandbox.catalog import MANIFESTS_DIR
from console.sandbox.manifests import ManifestError, load_manifests, topics_to_create

from .conftest import FIXTURE_MANIFESTS, write_manifests

MORE = {
    "dapr.yaml": """
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: kafka-pubsub, namespace: todo-app}
        spec: {type: pubsub.kafka, version: v1}
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


def test_loads_topics_and_subscriptions_and_ignores_the_rest(tmp_path: Path) -> None:
    root = write_manifests(tmp_path, {**FIXTURE_MANIFESTS, **MORE})
    m = load_manifests(root)

    topics = {t.name: t for t in m.topics}
    assert set(topics) == {"orders", "payments"}  # spec.topicName wins over metadata.name
    assert topics["orders"].partitions == 3
    assert topics["payments"].partitions == 1
    assert topics["orders"].configs == {"retention.ms": "604800000", "cleanup.policy": "delete"}
    assert topics["orders"].cluster == "todo-kafka"

    subs = {s.name: s for s in m.subscriptions}
    assert set(subs) == {"shop-orders", "legacy"}  # the Component and the Deployment are not ours to read
    assert subs["shop-orders"].default_route == "/events/orders"
    assert subs["shop-orders"].scopes == ("shop",)
    assert subs["shop-orders"].dead_letter_topic == "orders-dlq"
    assert subs["legacy"].default_route == "/events/payments"
    assert subs["legacy"].dead_letter_topic is None


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


def test_real_kustomize_base_declares_the_contract_topics() -> None:
    """The topics and DLQs of CONTRIBUTING.md, and the console's redrive ledger, read from the real manifests."""
    m = load_manifests(MANIFESTS_DIR)
    topics = {t.name: t.partitions for t in topics_to_create(m)}
    assert topics == {
        "task-events": 3, "reminders": 1, "task-updates": 3,
        "task-events-dlq": 1, "reminders-dlq": 1, "task-updates-dlq": 1,
        "console-redrive-ledger": 1,
    }
    assert m.subscriptions
    assert {s.dead_letter_topic for s in m.subscriptions} <= set(topics)
    assert all(s.pubsub == "kafka-pubsub" for s in m.subscriptions)
