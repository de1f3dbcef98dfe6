"""Topic creation against a real tansu broker: partitions from the manifests, idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka.admin import NewTopic

from console.sandbox.broker import Broker
from console.sandbox.manifests import KafkaTopic, load_manifests, topics_to_create
from console.sandbox.topics import TopicError, admin_client, ensure_topics, partition_counts

pytestmark = pytest.mark.broker


def test_creates_declared_topics_then_leaves_them_alone(tansu: Broker, fixture_manifests: Path) -> None:
    topics = topics_to_create(load_manifests(fixture_manifests))

    first = ensure_topics(tansu.bootstrap, topics)
    assert {r.name: r.status for r in first} == {"orders": "created", "payments": "created", "orders-dlq": "created"}

    admin = admin_client(tansu.bootstrap)
    try:  # partitions as the broker's metadata reports them, not as we asked
        assert partition_counts(admin, ["orders", "payments", "orders-dlq"]) == {
            "orders": 3, "payments": 1, "orders-dlq": 1}
    finally:
        admin.close()

    second = ensure_topics(tansu.bootstrap, topics)
    assert {r.name: r.status for r in second} == {"orders": "exists", "payments": "exists", "orders-dlq": "exists"}
    assert [r.actual_partitions for r in second] == [3, 1, 1]


def test_a_different_partition_count_is_reported_not_changed(tansu: Broker) -> None:
    admin = admin_client(tansu.bootstrap)
    try:
        admin.create_topics([NewTopic("orders", 2, 1)])
    finally:
        admin.close()
    (result,) = ensure_topics(tansu.bootstrap, [KafkaTopic("orders", 3, 1, {}, None, Path("x.yaml"))])
    assert (result.status, result.declared_partitions, result.actual_partitions) == ("mismatch", 3, 2)


def test_unreachable_broker_is_a_topic_error() -> None:
    from console.sandbox.ports import free_port

    with pytest.raises(TopicError, match="cannot reach the broker"):
        ensure_topics(f"127.0.0.1:{free_port()}", [KafkaTopic("x", 1, 1, {}, None, Path("x.yaml"))])


def test_real_kustomize_base_topics_on_tansu(tansu: Broker) -> None:
    """What `up` creates from the real manifests: the contract's topics and partitions, configs accepted."""
    from console.sandbox.catalog import MANIFESTS_DIR

    results = ensure_topics(tansu.bootstrap, topics_to_create(load_manifests(MANIFESTS_DIR)))
    assert {r.name: (r.status, r.actual_partitions) for r in results} == {
        "task-events": ("created", 3), "reminders": ("created", 1), "task-updates": ("created", 3),
        "task-events-dlq": ("created", 1), "reminders-dlq": ("created", 1), "task-updates-dlq": ("created", 1),
        "console-redrive-ledger": ("created", 1),
    }
