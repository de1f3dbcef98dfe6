"""A consumed Kafka message as the delivery code sees it, and the partition it came from.

The sidecar reads with librdkafka (confluent-kafka): a C client that fetches, decodes and
buffers in its own threads, where the pure-Python client it used before cost an order of
magnitude more CPU per message and kept a core busy polling an idle broker. Its `Message`
is read through method calls and only valid while the client lives; the delivery threads
get a plain copy of the fields daprd's Kafka component passes on (GetEventMetadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from confluent_kafka import Message


class Partition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp: int  # ms since the epoch, as the producer (or the broker) stamped it

    @property
    def where(self) -> Partition:
        return Partition(self.topic, self.partition)


def from_message(message: Message) -> Record:
    """Copy a consumed (error-free) message; without deserializers its key, value and headers are bytes."""
    return Record(
        topic=message.topic() or "", partition=message.partition() or 0, offset=message.offset() or 0,
        key=_raw(message.key()), value=_raw(message.value()),
        headers=[(name, _raw(value)) for name, value in cast(list[tuple[str, Any]], message.headers() or [])],
        timestamp=message.timestamp()[1],
    )


def _raw(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value
