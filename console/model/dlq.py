"""Dead letters: what one is, where it came from, why it failed, and what redriving or purging it would do.

Pure rules over records the Kafka source read; no I/O (console.sources.dead_letters runs them).

A dead letter is the original message's bytes (the CloudEvent as published) under the original key.
Where it came from: the sandbox's sidecar writes `x-dlq-original-topic/partition/offset`; daprd writes
only the original message's metadata (`__topic`, `__partition`, `__offset`), so those are the fallback.
Why it failed: the sidecar's `x-dlq-reason`, `x-dlq-status`, `x-dlq-error`; daprd writes none, so in the
cluster the reason comes from the logs by CloudEvent id, through any `FailureReasons` (the Loki source).

Redrive sends the message back to its ORIGINAL topic and partition with its key, value and the original
producer's headers; Dapr's per-delivery metadata and the `x-dlq-*` headers are dropped (the consumer's
sidecar writes fresh ones), and `x-todo-redrive-count` / `x-todo-redriven-from` are added. Every
subscriber of that topic sees it again, not only the one that failed: the platform's consumers are
idempotent by CloudEvent id (DESIGN.md), which is what makes that safe. For the same reason one copy is
enough when several subscribers dead-lettered the same event (worker and audit both read task-events):
a redrive sends one per event, and a dead letter of an event redriven after it was dead-lettered is
"superseded" (that copy reached its subscriber too); a new failure after the redrive is a new dead letter.

The ledger (a Kafka topic, one partition, so one order) records every redrive: a console first writes
a claim for the dead letter's coordinates (dlq/partition/offset), reads the ledger back, and redrives
only if its claim is the first one for those coordinates; then it records the outcome. So the same dead
letter is never redriven twice, by one operator twice or by two at once. A message whose redrive count
(the header, or the ledger's count for its CloudEvent id, whichever is higher) has reached the poison
limit is refused: it has failed after every redrive, and needs a fix, not another try.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

from console.model.kafka import KafkaRecord, PartitionOffsets, TopicPartition
from console.model.wiring import SubscriptionInfo

DAPR_METADATA_HEADERS = frozenset({"__key", "__topic", "__partition", "__offset", "__timestamp", "pubsubName"})
DLQ_HEADER_PREFIX = "x-dlq-"
REDRIVE_COUNT_HEADER = "x-todo-redrive-count"
REDRIVEN_FROM_HEADER = "x-todo-redriven-from"
POISON_AFTER = 3  # redrives; the next one is refused


class FailureReasons(Protocol):
    """Why the consumer rejected an event, found by its CloudEvent id (in the cluster: in the logs)."""

    def reason_for(self, event_id: str) -> str | None: ...


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, read for what an operator needs to decide on it."""

    record: KafkaRecord

    @property
    def dlq(self) -> str:
        return self.record.topic

    @property
    def coordinates(self) -> str:
        """dlq/partition/offset: names this dead letter, also in the ledger."""
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"

    @property
    def position(self) -> str:
        """partition/offset, as tables show it and `--id` accepts it."""
        return f"{self.record.partition}/{self.record.offset}"

    @cached_property
    def cloudevent(self) -> dict[str, Any] | None:
        try:
            event = json.loads(self.record.value or b"")
        except ValueError:
            return None
        return event if isinstance(event, dict) and "specversion" in event else None

    def _field(self, name: str) -> str | None:
        value = (self.cloudevent or {}).get(name)
        return None if value is None else str(value)

    @property
    def event_id(self) -> str | None:
        return self._field("id")

    @property
    def event_type(self) -> str | None:
        return self._field("type")

    @property
    def original_topic(self) -> str | None:
        return self.record.header("x-dlq-original-topic") or self.record.header("__topic")

    @property
    def original_partition(self) -> int | None:
        return _int(self.record.header("x-dlq-original-partition") or self.record.header("__partition"))

    @property
    def original_offset(self) -> int | None:
        return _int(self.record.header("x-dlq-original-offset") or self.record.header("__offset"))

    @property
    def app_id(self) -> str | None:
        return self.record.header("x-dlq-app-id")

    @property
    def attempts(self) -> int | None:
        return _int(self.record.header("x-dlq-attempts"))

    @property
    def header_reason(self) -> str | None:
        """The failure as the message itself tells it (the sandbox's sidecar); None from daprd."""
        kind = self.record.header("x-dlq-reason")
        if kind is None:
            return None
        status = self.record.header("x-dlq-status")
        error = self.record.header("x-dlq-error")
        return kind + (f" (HTTP {status})" if status else "") + (f": {error}" if error else "")

    @property
    def redrive_count(self) -> int:
        return _int(self.record.header(REDRIVE_COUNT_HEADER)) or 0

    @property
    def dead_lettered_at(self) -> float | None:
        millis = _int(self.record.header("x-dlq-time"))
        return millis / 1000.0 if millis is not None else self.record.timestamp


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def failure_reason(letter: DeadLetter, reasons: FailureReasons | None) -> str | None:
    """The message's own reason, else what `reasons` (the logs) say about its event id."""
    if letter.header_reason:
        return letter.header_reason
    if reasons is not None and letter.event_id:
        return reasons.reason_for(letter.event_id)
    return None


def redrive_headers(letter: DeadLetter, count: int) -> tuple[tuple[str, bytes], ...]:
    """The original producer's headers, without Dapr's delivery metadata and the dead-letter ones."""
    kept = tuple((k, v) for k, v in letter.record.headers
                 if k not in DAPR_METADATA_HEADERS and not k.startswith(DLQ_HEADER_PREFIX)
                 and k not in (REDRIVE_COUNT_HEADER, REDRIVEN_FROM_HEADER))
    return (*kept, (REDRIVE_COUNT_HEADER, str(count).encode()), (REDRIVEN_FROM_HEADER, letter.coordinates.encode()))


# --- the ledger ------------------------------------------------------------------------------------------
LedgerState = Literal["claimed", "redriven", "failed"]


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger record: a claim on a dead letter, or the outcome of that claim."""

    coordinates: str
    claim: str
    state: LedgerState
    at: float
    by: str
    event_id: str | None = None
    target_topic: str | None = None
    target_partition: int | None = None
    target_offset: int | None = None
    redrive_count: int = 0
    error: str | None = None
    ledger_offset: int = -1

    def to_json(self) -> bytes:
        data = {k: v for k, v in self.__dict__.items() if k != "ledger_offset"}
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_record(cls, record: KafkaRecord) -> LedgerEntry | None:
        """None for a record that is not a ledger entry (the ledger is read, never trusted blindly)."""
        try:
            data = json.loads(record.value or b"")
            return cls(**{k: data[k] for k in data if k in cls.__dataclass_fields__ and k != "ledger_offset"},
                       ledger_offset=record.offset)
        except (ValueError, TypeError, KeyError):
            return None


class Ledger:
    """Every redrive so far, folded in ledger order: per dead letter, the claim that holds it.

    The first claim holds a dead letter; later records of that claim move it to redriven or failed;
    records of other claims are ignored (they lost the race). A failed claim frees the dead letter for
    the next claim. An unfinished claim (a console that died between claim and outcome) keeps holding
    it: whether the message was produced is unknown, so it is not redriven again blindly.
    """

    def __init__(self, entries: Iterable[LedgerEntry] = ()) -> None:
        self._holders: dict[str, LedgerEntry] = {}
        for entry in sorted(entries, key=lambda e: e.ledger_offset):
            holder = self._holders.get(entry.coordinates)
            if entry.state == "claimed":
                if holder is None or holder.state == "failed":
                    self._holders[entry.coordinates] = entry
            elif holder is not None and holder.claim == entry.claim:
                self._holders[entry.coordinates] = entry

    def holder(self, coordinates: str) -> LedgerEntry | None:
        """The claim holding this dead letter (None if free, or only failed claims)."""
        entry = self._holders.get(coordinates)
        return entry if entry is not None and entry.state != "failed" else None

    def settled_by(self, letter: DeadLetter) -> LedgerEntry | None:
        """What settled a dead letter: its own claim, or a redrive of the same event whose copy comes after
        it (through another subscriber's dead letter; its one copy reached every subscriber too).
        None: it is still waiting for a decision."""
        own = self.holder(letter.coordinates)
        if own is not None or not letter.event_id:
            return own
        later = [e for e in self._holders.values()
                 if e.event_id == letter.event_id and e.state != "failed" and _supersedes(e, letter)]
        return min(later, key=lambda e: e.ledger_offset, default=None)

    def redrives_of(self, event_id: str | None) -> int:
        """How many copies of this event were redriven (or may have been: unfinished claims). Dead letters
        of one event redriven together share one copy and count once."""
        if not event_id:
            return 0
        copies = {(e.target_topic, e.target_partition, e.target_offset) if e.state == "redriven" else e.claim
                  for e in self._holders.values() if e.event_id == event_id and e.state != "failed"}
        return len(copies)

    def entries(self) -> list[LedgerEntry]:
        return sorted(self._holders.values(), key=lambda e: e.ledger_offset)


def _supersedes(entry: LedgerEntry, letter: DeadLetter) -> bool:
    """Whether the copy `entry` redrove came after `letter` (a dead letter of the same event), so it reached
    that subscriber again and redriving `letter` too would send a duplicate; False when `letter` may be that
    copy failing again, which is a new failure, waiting.

    Clock-free where the records allow it, because the copy can fail and be dead-lettered within
    milliseconds of being produced, before its ledger entry is even written, and a cluster's clocks differ
    from the console's: a dead letter carries the redrive count of the copy it came from (the header is
    kept), so one with this entry's count or more came from this copy or a later one; one that came from
    the copy's partition is before it by offset. Only a dead letter from elsewhere is compared by time.
    """
    if letter.redrive_count >= entry.redrive_count:
        return False
    same_partition = (letter.original_topic, letter.original_partition) == (entry.target_topic, entry.target_partition)
    if same_partition and letter.original_offset is not None and entry.target_offset is not None:
        return letter.original_offset < entry.target_offset
    return letter.dead_lettered_at is not None and letter.dead_lettered_at <= entry.at


# --- choosing and planning ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """Which dead letters a redrive takes: by id (CloudEvent id, or partition/offset), type, age, reason."""

    ids: frozenset[str] = frozenset()
    event_type: str | None = None
    older_than_s: float | None = None
    reason: str | None = None
    everything: bool = False

    def __post_init__(self) -> None:
        if not (self.ids or self.event_type or self.older_than_s is not None or self.reason or self.everything):
            raise ValueError("say which dead letters: --id, --type, --older-than, --reason or --all")

    def matches(self, letter: DeadLetter, now: float, reason: str | None) -> bool:
        if self.ids and not ({letter.event_id, letter.position, letter.coordinates} & self.ids):
            return False
        if self.event_type and letter.event_type != self.event_type:
            return False
        if self.older_than_s is not None:
            at = letter.dead_lettered_at
            if at is None or now - at < self.older_than_s:
                return False
        return not (self.reason and self.reason.lower() not in (reason or "").lower())


@dataclass(frozen=True)
class RedrivePlanItem:
    letter: DeadLetter
    action: Literal["redrive", "refuse"]
    reason: str
    target_topic: str | None = None
    target_partition: int | None = None
    redrive_count: int = 0  # the count the redriven message will carry
    with_letter: str | None = None  # coordinates of the dead letter of the same event whose copy it shares


def plan_redrive(letters: Sequence[DeadLetter], ledger: Ledger, *, partitions: Mapping[str, int],
                 subscriptions: Sequence[SubscriptionInfo] = (), poison_after: int = POISON_AFTER
                 ) -> list[RedrivePlanItem]:
    """What a redrive of `letters` would do: each one redriven to where it came from, or refused and why.

    `partitions`: partition counts of the existing topics (a target topic must exist; the original
    partition is kept when it still exists, else the key chooses). `subscriptions`: the DLQ's, to find
    the original topic of a message that names none (only when they all consume the same topic).
    """
    wired_topics = {s.topic for s in subscriptions}
    plan = []
    first_of: dict[tuple[str, str], RedrivePlanItem] = {}
    for letter in letters:
        settled = ledger.settled_by(letter)
        count = max(letter.redrive_count, ledger.redrives_of(letter.event_id))
        topic = letter.original_topic or (next(iter(wired_topics)) if len(wired_topics) == 1 else None)
        shared = first_of.get((letter.event_id, topic)) if letter.event_id and topic else None
        if settled is not None:
            plan.append(RedrivePlanItem(letter, "refuse", _settled_reason(letter, settled)))
        elif shared is not None:
            plan.append(RedrivePlanItem(letter, "redrive", f"with {shared.letter.position}: one copy of the event "
                                        "reaches every subscriber", shared.target_topic, shared.target_partition,
                                        shared.redrive_count, shared.letter.coordinates))
        elif count >= poison_after:
            plan.append(RedrivePlanItem(letter, "refuse",
                                        f"poison: redriven {count} time{'s' if count != 1 else ''} already "
                                        f"(limit {poison_after})"))
        elif topic is None:
            plan.append(RedrivePlanItem(letter, "refuse", "original topic unknown (no __topic header)"))
        elif topic not in partitions:
            plan.append(RedrivePlanItem(letter, "refuse", f"original topic {topic} does not exist"))
        else:
            original = letter.original_partition
            partition = original if original is not None and original < partitions[topic] else None
            where = f"{topic}[{partition}]" if partition is not None else f"{topic} (partition by key)"
            item = RedrivePlanItem(letter, "redrive", f"to {where}, redrive {count + 1}", topic, partition, count + 1)
            plan.append(item)
            if letter.event_id:
                first_of[(letter.event_id, topic)] = item
    return plan


def _settled_reason(letter: DeadLetter, entry: LedgerEntry) -> str:
    where = (f" to {entry.target_topic}[{entry.target_partition}]@{entry.target_offset}"
             if entry.state == "redriven" else "")
    if entry.coordinates != letter.coordinates:
        return f"superseded: its event was redriven{where} by {entry.by} after it was dead-lettered"
    if entry.state == "redriven":
        return f"already redriven{where} by {entry.by}"
    return f"already claimed by {entry.by} (outcome unknown: check the target topic)"


def letter_state(letter: DeadLetter, entry: LedgerEntry | None) -> str:
    """waiting, redriven, claimed, or superseded (a redrive of the same event settled it)."""
    if entry is None:
        return "waiting"
    return entry.state if entry.coordinates == letter.coordinates else "superseded"


# --- summaries and purges ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DlqSummary:
    """One dead-letter topic at a glance.

    `pending`: records neither deleted nor marked handled (purged); `waiting`: pending ones not settled
    by a redrive yet, what an operator still has to decide on; `last_hour`: dead letters that arrived in the last hour.
    `scanned_all` is False when only the newest records were read (the counts of waiting/redriven and
    last_hour are then lower bounds; `pending` is always exact).
    """

    topic: str
    subscriptions: tuple[SubscriptionInfo, ...]
    partitions: int
    total: int
    pending: int
    waiting: int
    redriven: int
    last_hour: int
    oldest_waiting_at: float | None
    newest_at: float | None
    scanned_all: bool
    handled_up_to: Mapping[TopicPartition, int] = field(default_factory=dict)

    @property
    def apps(self) -> list[str]:
        return sorted({s.app_id for s in self.subscriptions})

    @property
    def original_topics(self) -> list[str]:
        return sorted({s.topic for s in self.subscriptions})


def pending_start(offsets: PartitionOffsets, handled: int | None) -> int:
    """Where the pending records of a partition begin: after the deleted and the marked-handled ones."""
    return max(offsets.start, handled or 0)


def summarize(topic: str, subscriptions: Sequence[SubscriptionInfo], offsets: Mapping[TopicPartition, PartitionOffsets],
              handled: Mapping[TopicPartition, int], scanned: Sequence[DeadLetter], ledger: Ledger, now: float,
              scanned_all: bool) -> DlqSummary:
    pending_letters = [d for d in scanned
                       if d.record.offset >= pending_start(offsets[d.record.tp], handled.get(d.record.tp))]
    waiting = [d for d in pending_letters if ledger.settled_by(d) is None]
    stamps = [d.dead_lettered_at for d in scanned if d.dead_lettered_at is not None]
    oldest = [d.dead_lettered_at for d in waiting if d.dead_lettered_at is not None]
    return DlqSummary(
        topic=topic, subscriptions=tuple(subscriptions), partitions=len(offsets),
        total=sum(o.size for o in offsets.values()),
        pending=sum(max(0, o.end - pending_start(o, handled.get(tp))) for tp, o in offsets.items()),
        waiting=len(waiting), redriven=len(pending_letters) - len(waiting),
        last_hour=sum(1 for at in stamps if now - at <= 3600), oldest_waiting_at=min(oldest, default=None),
        newest_at=max(stamps, default=None), scanned_all=scanned_all,
        handled_up_to={tp: h for tp, h in handled.items() if tp in offsets})


@dataclass(frozen=True)
class PurgePlan:
    """Records below `before[tp]` go (deleted, or marked handled); `count` of them are pending now."""

    topic: str
    before: Mapping[TopicPartition, int]
    count: int


def plan_purge(topic: str, offsets: Mapping[TopicPartition, PartitionOffsets], handled: Mapping[TopicPartition, int],
               pending: Sequence[DeadLetter], now: float, older_than_s: float | None = None) -> PurgePlan:
    """Purge everything pending (up to the end offsets read now, so nothing that arrives meanwhile goes
    unseen), or only the prefix of each partition dead-lettered more than `older_than_s` ago: Kafka
    removes records only from the front of a partition, so the first younger record stops it."""
    before: dict[TopicPartition, int] = {}
    count = 0
    for tp, o in offsets.items():
        start = pending_start(o, handled.get(tp))
        cut = o.end
        if older_than_s is not None:
            younger = [d.record.offset for d in pending
                       if d.record.tp == tp and d.record.offset >= start
                       and (d.dead_lettered_at is None or now - d.dead_lettered_at < older_than_s)]
            cut = min(younger, default=o.end)
        if cut > start:
            before[tp] = cut
            count += cut - start
    return PurgePlan(topic, before, count)
