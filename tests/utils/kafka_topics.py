"""The suite's Kafka helpers: whether a broker is there, creating topics, reading a topic from its start."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from console.sandbox.broker import BrokerError, tansu_binary
from tests.utils.required import require
from tests.utils.waiting import wait_until


def require_tansu() -> None:
    """The tansu broker, unless KAFKA_BOOTSTRAP points at another broker."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        return
    require(tansu_binary, BrokerError, "the tansu broker (install the 'sandbox' extra)")


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create topics explicitly, as the cluster's KafkaTopic resources do (the dev sidecar never creates any)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(name, parts, 1) for name, parts in topics.items() if name not in existing]
        if new:
            admin.create_topics(new)
    finally:
        admin.close()


class TopicReader:
    """Everything in a topic from the beginning; `wait(pred)` polls until pred(all records so far)."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self.records: list[Any] = []

    def wait(self, predicate: Callable[[list[Any]], bool], timeout: float = 10.0, message: str = "records") -> list[Any]:
        def check() -> bool:
            for batch in self.consumer.poll(timeout_ms=50).values():
                self.records.extend(batch)
            return predicate(self.records)
        wait_until(check, timeout, 0, message)
        return self.records

    def read(self, n: int = 1, timeout: float = 10.0) -> list[Any]:
        return self.wait(lambda rs: len(rs) >= n, timeout, f"{n} record(s)")[:n]

    def by_key(self, *keys: bytes, timeout: float = 10.0) -> dict[bytes, Any]:
        self.wait(lambda rs: set(keys) <= {r.key for r in rs}, timeout, f"records with keys {keys}")
        return {r.key: r for r in self.records if r.key in keys}


@contextmanager
def topic_reader(bootstrap: str, topic: str) -> Iterator[TopicReader]:
    """A reader over `topic` (all partitions, from the beginning)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    parts = wait_until(lambda: topic in consumer.topics() and consumer.partitions_for_topic(topic), 10,
                       message=f"topic {topic}")
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    try:
        yield TopicReader(consumer)
    finally:
        consumer.close()
