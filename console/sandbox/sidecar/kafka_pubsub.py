"""The pubsub.kafka component's producer side: one librdkafka producer, acks=all, metadata as headers.

Behaves like components-contrib's Kafka component (common/component/kafka/producer.go): the
`partitionKey` (or `__key`) metadata becomes the message key, `partitionNumber` pins the
partition, and every metadata entry is also written as a Kafka header. The producer is created
lazily and re-created after failures so a sidecar started while the broker is down still comes
up, and publishing after a broker restart works. One thread per producer serves librdkafka's
delivery reports (`poll`), which wake the publishing threads; each waits for its own message's
report for at most the attempt's timeout.

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
import os
import threading
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as KafkaProducer

from console.sandbox.sidecar.topicscopes import TopicScopes

log = logging.getLogger(__name__)

DEFAULT_ATTEMPT_TIMEOUT_S = 10.0  # sarama's Producer.Timeout, daprd's bound when no policy applies
# How records are grouped into produce requests; the sandbox sets them per broker mode
# (console/sandbox/catalog.py KAFKA_TUNING). By default a record goes out at once (linger 0) and any
# number of requests may be in flight, librdkafka's default.
LINGER_MS = int(os.environ.get("SIDECAR_PRODUCER_LINGER_MS", "0"))
MAX_IN_FLIGHT = int(os.environ.get("SIDECAR_PRODUCER_MAX_IN_FLIGHT", "1000000"))
LIBRDKAFKA_LOGGER = logging.getLogger("librdkafka")  # its connection chatter; see logs.configure
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

    def _require_topic(self, topic: str, timeout_s: float) -> None:
        """PublishError(UNKNOWN_TOPIC) unless the broker has `topic`; asks only for topics not seen yet."""
        if topic in self._topics:
            return
        try:
            self._topics = frozenset(self._client().list_topics(timeout=timeout_s).topics)
        except KafkaException as exc:
            self._reset()
            raise PublishError(_describe(exc)) from None
        if topic not in self._topics:
            raise PublishError(UNKNOWN_TOPIC)

    def _client(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer({
                    "bootstrap.servers": self.settings.bootstrap,
                    "client.id": f"{self.settings.client_id}-producer",
                    "acks": "all",
                    "linger.ms": LINGER_MS,
                    "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
                    "socket.nagle.disable": True,
                    "enable.idempotence": False,
                    "retries": 0,  # resiliency policies own retries, as in daprd
                    "message.timeout.ms": int(DEFAULT_ATTEMPT_TIMEOUT_S * 1000),
                    "reconnect.backoff.max.ms": 500,
                    "topic.metadata.refresh.interval.ms": 30000,
                    "enable.metrics.push": False,  # no KIP-714 telemetry requests (sarama, daprd's client, sends none)
                    "logger": LIBRDKAFKA_LOGGER,
                })
                threading.Thread(target=self._serve_reports, args=(self._producer,), daemon=True,
                                 name="producer-reports").start()
            return self._producer

    def _serve_reports(self, producer: KafkaProducer) -> None:
        """Run the delivery callbacks (and librdkafka's logs) until this producer is replaced or closed."""
        while self._producer is producer:
            producer.poll(0.2)

    def _reset(self) -> None:
        self._topics = frozenset()  # the broker may have restarted without them: ask again
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.purge()  # a failed client's queued messages must not go out behind the caller's back
            producer.flush(0)

    def send(self, topic: str, value: bytes, metadata: dict[str, str], timeout_s: float | None) -> tuple[int, int]:
        """Publish one message and wait for the broker's ack; returns (partition, offset)."""
        timeout = timeout_s or DEFAULT_ATTEMPT_TIMEOUT_S
        self._require_topic(topic, timeout)
        key, partition = message_key_and_partition(metadata)
        headers: list[tuple[str, str | bytes | None]] = [(k, v.encode()) for k, v in metadata.items()]
        # A held lock as a one-shot latch, released by the delivery report: an Event (a Condition
        # and its locks, a notify) cost a publish twice as much CPU in creating and setting it (py-spy).
        acked = threading.Lock()
        acked.acquire()
        report: list[tuple[KafkaError | None, Message]] = []

        def delivered(error: KafkaError | None, message: Message) -> None:
            report.append((error, message))
            acked.release()

        try:
            client = self._client()
            if partition is None:
                client.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
            else:
                client.produce(topic, value=value, key=key, headers=headers, partition=partition,
                               on_delivery=delivered)
        except (KafkaException, BufferError) as exc:
            self._reset()
            raise PublishError(_describe(exc)) from None
        if not acked.acquire(timeout=timeout):
            self._reset()
            raise PublishError(f"KafkaTimeoutError: no acknowledgement within {timeout:g}s")
        error, message = report[0]
        if error is not None:
            self._reset()
            raise PublishError(_describe(KafkaException(error)))
        return message.partition() or 0, message.offset() or 0

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(5)


def _describe(exc: KafkaException | BufferError) -> str:
    """librdkafka's error name and text, e.g. "_TRANSPORT: Local: Broker transport failure"."""
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return f"{error.name()}: {error.str()}"
    return f"{type(exc).__name__}: {exc}"
