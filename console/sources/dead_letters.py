"""Dead-letter topics over the Kafka source: list, browse, redrive through the ledger, purge.

The rules are in console.model.dlq; this module reads what they need and carries out what they decide,
with `KafkaSource` as its only way to Kafka (so the commands and the dashboard share one implementation).

The ledger is the Kafka topic `console-redrive-ledger` (kustomize/base declares it, so the sandbox and
the cluster both have it). "Marked handled" is the committed offset of the console's own consumer group
`todo-console-dlq` on a dead-letter partition: purge moves it where the broker cannot delete records
(tansu has no DeleteRecords), and every listing starts after it.
"""

from __future__ import annotations

import getpass
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from console.model.dlq import (
    POISON_AFTER,
    DeadLetter,
    DlqSummary,
    FailureReasons,
    Ledger,
    LedgerEntry,
    PurgePlan,
    RedrivePlanItem,
    Selection,
    failure_reason,
    pending_start,
    plan_purge,
    plan_redrive,
    redrive_headers,
    summarize,
)
from console.model.kafka import OutgoingRecord, PartitionOffsets, Produced, TopicPartition
from console.model.wiring import SubscriptionInfo, Wiring
from console.sources.health import SourceError
from console.sources.kafka import CONSOLE_GROUP_PREFIX, KafkaSource

LEDGER_TOPIC = "console-redrive-ledger"
HANDLED_GROUP = f"{CONSOLE_GROUP_PREFIX}-dlq"
SCAN_LIMIT = 5000  # records read per DLQ partition for a summary (the newest ones)


@dataclass(frozen=True)
class RedriveResult:
    item: RedrivePlanItem
    outcome: Literal["redriven", "refused", "lost", "failed"]
    detail: str
    target_offset: int | None = None


@dataclass(frozen=True)
class PurgeResult:
    plan: PurgePlan
    mode: Literal["deleted", "marked", "nothing"]
    detail: str
    marks: dict[TopicPartition, int] = field(default_factory=dict)


class DeadLetters:
    """The dead-letter topics of `wiring` on the cluster behind `kafka`."""

    def __init__(self, kafka: KafkaSource, wiring: Wiring, *, reasons: FailureReasons | None = None,
                 ledger_topic: str = LEDGER_TOPIC, handled_group: str = HANDLED_GROUP,
                 operator: str | None = None) -> None:
        self.kafka = kafka
        self.wiring = wiring
        self.reasons = reasons
        self.ledger_topic = ledger_topic
        self.handled_group = handled_group
        self.operator = operator or f"{getpass.getuser()}@{socket.gethostname()}"

    # --- reading ---------------------------------------------------------------------------------------

    def topics(self) -> list[str]:
        """The dead-letter topics the Subscriptions name."""
        return sorted(self.wiring.dead_letter_topics())

    def subscriptions(self, dlq: str) -> list[SubscriptionInfo]:
        return self.wiring.dead_letter_topics().get(dlq, [])

    def _known(self, dlq: str) -> None:
        if dlq not in self.wiring.dead_letter_topics():
            known = ", ".join(self.topics()) or "none"
            raise ValueError(f"{dlq} is not a dead-letter topic of any Subscription (known: {known})")

    def _offsets(self, dlqs: Sequence[str]) -> tuple[dict[str, dict[TopicPartition, PartitionOffsets]],
                                                     dict[TopicPartition, int]]:
        counts = self.kafka.topics(dlqs)
        tps = [TopicPartition(t, p) for t in dlqs if t in counts for p in range(counts[t])]
        offsets = self.kafka.partition_offsets(tps)
        handled, _error = self.kafka.committed_offsets([self.handled_group]).get(self.handled_group, ({}, None))
        per_topic: dict[str, dict[TopicPartition, PartitionOffsets]] = {t: {} for t in dlqs if t in counts}
        for tp, o in offsets.items():
            per_topic[tp.topic][tp] = o
        return per_topic, handled

    def ledger(self, *, required: bool = False) -> Ledger:
        """The ledger as written so far. Missing topic: an empty ledger, or an error when `required`
        (a redrive must not run without its record)."""
        tp = TopicPartition(self.ledger_topic, 0)
        if self.ledger_topic not in self.kafka.topics([self.ledger_topic]):
            if required:
                raise SourceError(self.kafka.source, self.kafka.bootstrap,
                                  f"the redrive ledger topic {self.ledger_topic} does not exist "
                                  "(kustomize/base/console-redrive-ledger-kafkatopic.yaml declares it)")
            return Ledger()
        offsets = self.kafka.partition_offsets([tp])[tp]
        records = self.kafka.read(tp, offsets.start, end=offsets.end, limit=max(1, offsets.size))
        return Ledger(e for e in map(LedgerEntry.from_record, records) if e is not None)

    def _letters(self, offsets: dict[TopicPartition, PartitionOffsets], handled: dict[TopicPartition, int],
                 limit: int, *, include_handled: bool = False, newest: bool = False) -> tuple[list[DeadLetter], bool]:
        """Dead letters of every partition (pending ones, or all still in the log), up to `limit` each."""
        letters: list[DeadLetter] = []
        complete = True
        for tp, o in sorted(offsets.items()):
            first = o.start if include_handled else pending_start(o, handled.get(tp))
            if newest and o.end - first > limit:
                first, complete = o.end - limit, False
            records = self.kafka.read(tp, first, end=o.end, limit=limit)
            complete = complete and (not records or records[-1].offset >= o.end - 1)
            letters.extend(DeadLetter(r) for r in records)
        return letters, complete

    def summaries(self, now: float | None = None) -> list[DlqSummary]:
        now = time.time() if now is None else now
        dlqs = self.topics()
        per_topic, handled = self._offsets(dlqs)
        ledger = self.ledger()
        result = []
        for dlq in dlqs:
            offsets = per_topic.get(dlq, {})
            scanned, complete = self._letters(offsets, handled, SCAN_LIMIT, include_handled=True, newest=True)
            result.append(summarize(dlq, self.subscriptions(dlq), offsets, handled, scanned, ledger, now, complete))
        return result

    def browse(self, dlq: str, *, limit: int = 50, include_handled: bool = False) -> list[DeadLetter]:
        """The oldest `limit` pending dead letters of `dlq` (with the handled ones too, if asked)."""
        self._known(dlq)
        per_topic, handled = self._offsets([dlq])
        letters, _ = self._letters(per_topic.get(dlq, {}), handled, limit, include_handled=include_handled)
        return sorted(letters, key=lambda d: (d.dead_lettered_at or 0, d.record.partition, d.record.offset))[:limit]

    def pending_starts(self, dlq: str) -> dict[TopicPartition, int]:
        """Per partition, the first pending offset: records below it were deleted or marked handled."""
        per_topic, handled = self._offsets([dlq])
        return {tp: pending_start(o, handled.get(tp)) for tp, o in per_topic.get(dlq, {}).items()}

    def reason(self, letter: DeadLetter) -> str | None:
        return failure_reason(letter, self.reasons)

    # --- redrive -----------------------------------------------------------------------------------------

    def plan_redrive(self, dlq: str, selection: Selection, *, now: float | None = None,
                     poison_after: int = POISON_AFTER, limit: int = 10_000) -> list[RedrivePlanItem]:
        """What a redrive of the selected dead letters would do (the dry run: nothing is changed).

        The selection looks at the dead letters still waiting (pending, not redriven yet). An `--id`
        that matches none of those but matches one already redriven gets that one, refused, so asking
        twice says why nothing happens.
        """
        self._known(dlq)
        now = time.time() if now is None else now
        per_topic, handled = self._offsets([dlq])
        letters, _ = self._letters(per_topic.get(dlq, {}), handled, limit)
        ledger = self.ledger()
        chosen = [d for d in letters if ledger.settled_by(d) is None and selection.matches(d, now, self.reason(d))]
        if not chosen and selection.ids:
            chosen = [d for d in letters if selection.matches(d, now, self.reason(d))]
        wanted = {d.original_topic for d in chosen if d.original_topic} | {s.topic for s in self.subscriptions(dlq)}
        partitions = self.kafka.topics(wanted) if wanted else {}
        return plan_redrive(chosen, ledger, partitions=partitions, subscriptions=self.subscriptions(dlq),
                            poison_after=poison_after)

    def redrive(self, plan: Sequence[RedrivePlanItem]) -> list[RedriveResult]:
        """Carry out a plan: claim each dead letter in the ledger, keep the claims that hold, produce those
        to their original topics, and record the outcome of each."""
        results = {id(i): RedriveResult(i, "refused", i.reason) for i in plan if i.action == "refuse"}
        todo = [i for i in plan if i.action == "redrive"]
        if todo:
            self.ledger(required=True)  # refuse before claiming anything if there is no ledger
            claims = {id(i): uuid.uuid4().hex for i in todo}
            self._write_ledger([self._entry(i, claims[id(i)], "claimed") for i in todo])
            ledger = self.ledger(required=True)
            held = []
            for item in todo:
                holder = ledger.holder(item.letter.coordinates)
                if holder is not None and holder.claim == claims[id(item)]:
                    held.append(item)
                else:
                    by = holder.by if holder else "another console"
                    results[id(item)] = RedriveResult(item, "lost", f"claimed at the same time by {by}")
            outcomes = []
            sent: dict[str, Produced | SourceError] = {}  # per primary dead letter: its one copy, or why not
            for item in (i for i in held if i.with_letter is None):
                record = OutgoingRecord(item.letter.record.value, item.letter.record.key,
                                        redrive_headers(item.letter, item.redrive_count), item.target_partition)
                try:
                    (sent[item.letter.coordinates],) = self.kafka.produce(item.target_topic or "", [record])
                except SourceError as exc:
                    sent[item.letter.coordinates] = exc
            for item in held:
                entry = self._entry(item, claims[id(item)], "redriven")
                copy = sent.get(item.with_letter or item.letter.coordinates)
                if not isinstance(copy, Produced):
                    reason = copy.reason if copy is not None else "the dead letter it shares a copy with was not sent"
                    outcomes.append(replace(entry, state="failed", error=reason))
                    results[id(item)] = RedriveResult(item, "failed", reason)
                    continue
                outcomes.append(replace(entry, target_partition=copy.partition, target_offset=copy.offset))
                results[id(item)] = RedriveResult(
                    item, "redriven", f"to {copy.topic}[{copy.partition}]@{copy.offset}" +
                    (" (one copy with its event's other dead letter)" if item.with_letter else ""), copy.offset)
            self._write_ledger(outcomes)
        return [results[id(i)] for i in plan]

    def _entry(self, item: RedrivePlanItem, claim: str, state: Literal["claimed", "redriven"]) -> LedgerEntry:
        return LedgerEntry(
            coordinates=item.letter.coordinates, claim=claim, state=state, at=time.time(), by=self.operator,
            event_id=item.letter.event_id, target_topic=item.target_topic, target_partition=item.target_partition,
            redrive_count=item.redrive_count)

    def _write_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        if entries:
            self.kafka.produce(self.ledger_topic, [OutgoingRecord(e.to_json(), e.coordinates.encode(), (), 0)
                                                   for e in entries])

    # --- purge -------------------------------------------------------------------------------------------

    def plan_purge(self, dlq: str, *, older_than_s: float | None = None, now: float | None = None,
                   limit: int = 100_000) -> PurgePlan:
        self._known(dlq)
        now = time.time() if now is None else now
        per_topic, handled = self._offsets([dlq])
        offsets = per_topic.get(dlq, {})
        pending: list[DeadLetter] = []
        if older_than_s is not None:
            pending, complete = self._letters(offsets, handled, limit)
            if not complete:  # never cut past records that were not looked at
                last = {tp: max(d.record.offset for d in pending if d.record.tp == tp) + 1
                        for tp in offsets if any(d.record.tp == tp for d in pending)}
                offsets = {tp: replace(o, end=last.get(tp, pending_start(o, handled.get(tp))))
                           for tp, o in offsets.items()}
        return plan_purge(dlq, offsets, handled, pending, now, older_than_s)

    def purge(self, plan: PurgePlan) -> PurgeResult:
        """DeleteRecords where the broker supports it; otherwise mark the records handled. Says which."""
        if not plan.before:
            return PurgeResult(plan, "nothing", "nothing to purge")
        outcome = self.kafka.delete_records(plan.before)
        if outcome.deleted and set(outcome.low_watermarks) == set(plan.before):
            return PurgeResult(plan, "deleted", f"records deleted ({outcome.reason})", dict(outcome.low_watermarks))
        self.kafka.commit(self.handled_group, plan.before)
        return PurgeResult(plan, "marked",
                           f"records marked handled (committed offsets of group {self.handled_group}): "
                           f"{outcome.reason}", dict(plan.before))
