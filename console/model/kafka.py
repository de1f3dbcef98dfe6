"""What the Kafka source reads, as plain data: offsets, groups, records.

The source (`console.sources.kafka`) fills these from the wire; the lag engine, the KEDA model and the
dead-letter model read them. Keeping them free of kafka-python-ng types means every rule is tested on
crafted values and the dashboard never holds a client object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class TopicPartition(NamedTuple):
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition's log as the leader sees it.

    `end` is the high watermark from a Fetch response (the offset the next record will get, the last
    committed-to-all-replicas record + 1): consumers can read up to there, so lag is measured against it.
    `start` is the log start offset: records below it were deleted (retention, DeleteRecords).
    """

    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True)
class GroupOffsets:
    """A consumer group: its state, its members and its committed offsets.

    `committed[tp]` is None for a partition the group consumes (per the wiring, or a topic it has
    committed on) but has never committed on: a new partition, or a consumer that has not started.
    `members` is None when the broker did not say; `error` is the group-level error, if any.
    """

    group: str
    state: str | None = None
    members: int | None = None
    committed: Mapping[TopicPartition, int | None] = field(default_factory=dict)
    error: str | None = None

    @property
    def live(self) -> bool | None:
        """Whether a consumer is connected: True/False when the broker said, None when it did not."""
        if self.members is None:
            return None
        return self.members > 0


@dataclass(frozen=True)
class LagSnapshot:
    """One read of everything lag needs, taken at `at` (Unix seconds).

    `record_times[(tp, offset)]` is the timestamp (Unix seconds) of the first record at or after that
    committed offset, read for every lagging partition; None where no such record could be read (it
    was deleted, or the broker gave nothing back).
    """

    at: float
    partitions: Mapping[TopicPartition, PartitionOffsets]
    groups: Mapping[str, GroupOffsets]
    record_times: Mapping[tuple[TopicPartition, int], float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class KafkaRecord:
    """A record read from a topic; `timestamp` in Unix seconds (None when the record carries none)."""

    topic: str
    partition: int
    offset: int
    timestamp: float | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> str | None:
        """The last value of header `name` as text (Kafka allows repeats; the last one wins, as in Dapr)."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value.decode("utf-8", errors="replace") if value is not None else None
        return found


@dataclass(frozen=True)
class OutgoingRecord:
    """A record to produce; `partition` None lets the client's partitioner choose by key."""

    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None


@dataclass(frozen=True)
class Produced:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class DeleteOutcome:
    """What a DeleteRecords attempt did: `deleted` True when the broker moved the log start offsets."""

    deleted: bool
    low_watermarks: Mapping[TopicPartition, int] = field(default_factory=dict)
    reason: str = ""
