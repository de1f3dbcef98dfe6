"""The pubsub.kafka component's producer side: one KafkaProducer, acks=all, metadata as headers.

Behaves like components-contrib's Kafka component (common/component/kafka/producer.go): the
`partitionKey` (or `__key`) metadata becomes the message key, `partitionNumber` pins the
partition, and every metadata entry is also written as a Kafka header. The producer is created
lazily and re-created after failures so a sidecar started while the broker is down still comes
up, and publishing after a broker restart works.

Topics are never created by a publish. The cluster's Kafka has auto.create.topics.enable=false,
so sarama's producer fails on an undeclared topic with "kafka server: Request was for a topic or
partition that does not exist on this broker" (ErrUnknownTopicOrPartition), which daprd's
Resiliency then retries. tansu creates any topic a producer asks metadata for, so before the first
send to a topic the sidecar lists the broker's topics (a metadata request for all topics, which
creates nothing) and refuses a topic that is not there the same way; topics seen are remembered
until a send fails (a broker restarted with empty storage has lost them), so the check costs one
request per new topic, not one per message.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError

from console.sandbox.sidecar.topicscopes import TopicScopes

log = logging.getLogger(__name__)

DEFAULT_ATTEMPT_TIMEOUT_S = 10.0  # sarama's Producer.Timeout, daprd's bound when no policy applies
UNKNOWN_TOPIC = "kafka server: Request was for a topic or partition that does not exist on this broker"


class PublishError(Exception):
    """The broker did not acknowledge the message (or could not be reached) in time."""


@dataclass(frozen=True)
class KafkaSettings:
    """What the sidecar takes from the pubsub Component's metadata (and the CLI)."""

    bootstrap: str
    consumer_group: str
    client_id: str
    initial_offset: str = "newest"  # newest | oldest
    consume_retry_s: float = 0.1  # consumeRetryInterval: pause before the component redelivers
    scopes: TopicScopes = field(default_factory=TopicScopes)


def message_key_and_partition(metadata: dict[str, str]) -> tuple[bytes | None, int | None]:
    """Key from `partitionKey`/`__key`, partition from `partitionNumber` (as the Kafka component)."""
    key = metadata.get("partitionKey", metadata.get("__key"))
    partition = metadata.get("partitionNumber")
    if partition is not None:
        try:
            number = int(partition)
        except ValueError as exc:
            raise PublishError(f"failed to parse partition number {partition}: {exc}") from None
        if number < 0:
            raise PublishError(f"invalid partition number {partition}")
        return (key.encode() if key is not None else None), number
    return (key.encode() if key is not None else None), None


class Producer:
    """Thread-safe publish with a per-attempt timeout; resiliency retries are the caller's job."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._topics: frozenset[str] = frozenset()  # topics the broker had when last asked
        self._admin: KafkaAdminClient | None = None
        self._admin_lock = threading.Lock()

    def _require_topic(self, topic: str, timeout_s: float) -> None:
        """PublishError(UNKNOWN_TOPIC) unless the broker has `topic`; asks only for topics not seen yet."""
        if topic in self._topics:
            return
        ms = int(timeout_s * 1000)
        with self._admin_lock:
            try:
                if self._admin is None:
                    self._admin = KafkaAdminClient(
                        bootstrap_servers=self.settings.bootstrap, client_id=f"{self.settings.client_id}-metadata",
                        request_timeout_ms=max(ms, 1000), api_version_auto_timeout_ms=ms,
                        reconnect_backoff_max_ms=500)
                self._topics = frozenset(self._admin.list_topics())
            except Exception as exc:  # kafka-python raises KafkaError subclasses and plain timeouts
                admin, self._admin = self._admin, None
                if admin is not None:
                    admin.close()
                raise PublishError(f"{type(exc).__name__}: {exc}") from None
        if topic not in self._topics:
            raise PublishError(UNKNOWN_TOPIC)

    def _client(self, timeout_s: float) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                ms = int(timeout_s * 1000)
                self._producer = KafkaProducer(
                    bootstrap_servers=self.settings.bootstrap,
                    client_id=f"{self.settings.client_id}-producer",
                    acks="all",
                    linger_ms=0,
                    retries=0,  # resiliency policies own retries, as in daprd
                    max_block_ms=ms,
                    request_timeout_ms=max(ms, 1000),
                    api_version_auto_timeout_ms=ms,
                    reconnect_backoff_max_ms=500,
                    metadata_max_age_ms=30000,
                )
            return self._producer

    def _reset(self) -> None:
        self._topics = frozenset()  # the broker may have restarted without them: ask again
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:  # closing a broken client must not mask the publish error
                log.debug("producer close failed", exc_info=True)

    def send(self, topic: str, value: bytes, metadata: dict[str, str], timeout_s: float | None) -> tuple[int, int]:
        """Publish one message and wait for the broker's ack; returns (partition, offset)."""
        timeout = timeout_s or DEFAULT_ATTEMPT_TIMEOUT_S
        self._require_topic(topic, timeout)
        key, partition = message_key_and_partition(metadata)
        headers = [(k, v.encode()) for k, v in metadata.items()]
        try:
            future = self._client(timeout).send(topic, value=value, key=key, headers=headers, partition=partition)
            record = future.get(timeout=timeout)
        except KafkaError as exc:
            self._reset()
            raise PublishError(_describe(exc)) from None
        except Exception as exc:
            self._reset()
            raise PublishError(f"{type(exc).__name__}: {exc}") from None
        return record.partition, record.offset

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        with self._admin_lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
        if producer is not None:
            producer.flush(timeout=5)
            producer.close(timeout=5)


def _describe(exc: KafkaError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text and text != type(exc).__name__ else type(exc).__name__
