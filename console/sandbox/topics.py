"""Create the declared topics on the sandbox broker, idempotently.

Topics are created explicitly because tansu auto-creates unknown topics with 4 partitions,
which would silently change how keys spread over consumers. A topic that already exists with
the declared partition count is left alone, so a second `up` (or a durable broker that kept its
topics) changes nothing. A count that differs is reported, not "fixed": tansu cannot add
partitions and no Kafka broker can remove them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from console.sandbox.manifests import KafkaTopic

log = logging.getLogger(__name__)


class TopicError(RuntimeError):
    """Topics could not be created or inspected; the message names the topic and broker."""


@dataclass(frozen=True)
class TopicResult:
    """What `ensure_topics` did for one topic: created, exists (left alone) or mismatch."""

    name: str
    status: str
    declared_partitions: int
    actual_partitions: int


def admin_client(bootstrap: str) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="todo-sandbox", request_timeout_ms=10000)
    except KafkaError as exc:
        raise TopicError(f"cannot reach the broker at {bootstrap}: {exc}") from exc


def partition_counts(admin: KafkaAdminClient, names: Iterable[str] | None = None) -> dict[str, int]:
    """Partition count per existing topic, read from broker metadata."""
    wanted = None if names is None else list(names)
    existing = set(admin.list_topics())
    query = sorted(existing if wanted is None else existing.intersection(wanted))
    if not query:
        return {}
    return {d["topic"]: len(d["partitions"]) for d in admin.describe_topics(query) if d["error_code"] == 0}


def ensure_topics(bootstrap: str, topics: Iterable[KafkaTopic]) -> list[TopicResult]:
    """Create missing topics with the declared partitions and configs; report the rest."""
    topics = list(topics)
    admin = admin_client(bootstrap)
    try:
        actual = partition_counts(admin, [t.name for t in topics])
        missing = [t for t in topics if t.name not in actual]
        if missing:
            new = [NewTopic(t.name, t.partitions, t.replicas, topic_configs=dict(t.configs)) for t in missing]
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # created concurrently; the metadata below tells the truth
            except KafkaError as exc:
                raise TopicError(f"creating topics on {bootstrap} failed: {exc}") from exc
            actual.update(partition_counts(admin, [t.name for t in missing]))
    finally:
        admin.close()
    results = []
    created = {t.name for t in missing}
    for topic in topics:
        count = actual.get(topic.name, 0)
        if count == 0:
            raise TopicError(f"topic {topic.name} is still missing on {bootstrap} after creation")
        status = "mismatch" if count != topic.partitions else ("created" if topic.name in created else "exists")
        if status == "mismatch":
            log.warning(
                "topic partitions differ from the manifest",
                extra={"topic": topic.name, "declared": topic.partitions, "actual": count},
            )
        results.append(TopicResult(topic.name, status, topic.partitions, count))
    log.info("topics ensured", extra={"topics": {r.name: r.status for r in results}})
    return results
