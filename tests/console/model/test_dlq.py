"""Dead-letter rules on crafted records: where a message came from, why it failed, what a redrive sends, the
ledger's first-claim-wins fold, the poison limit, and purge points."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from console.model.dlq import (
    DeadLetter,
    Ledger,
    LedgerEntry,
    LedgerState,
    Selection,
    failure_reason,
    letter_state,
    plan_purge,
    plan_redrive,
    redrive_headers,
    summarize,
)
from console.model.kafka import KafkaRecord, PartitionOffsets, TopicPartition
from console.model.wiring import SubscriptionInfo

NOW = 1_800_000_000.0
DLQ = "task-events-dlq"
SUB = SubscriptionInfo("worker-task-events", "todo-app", "worker", "kafka-pubsub", "task-events", "/events/task-events",
                       DLQ, False)


def event(event_id: str = "e-1", event_type: str = "todo.task.created.v1") -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "type": event_type, "source": "backend",
                       "data": {"title": "x"}}).encode()


def letter(offset: int = 0, *, value: bytes | None = None, headers: dict[str, str] | None = None,
           age: float = 60.0, partition: int = 0) -> DeadLetter:
    return DeadLetter(KafkaRecord(DLQ, partition, offset, NOW - age, b"user-1", value if value is not None else event(),
                                  tuple((k, v.encode()) for k, v in (headers or {}).items())))


SIDECAR_HEADERS = {"__key": "user-1", "__topic": "task-events", "__partition": "2", "__offset": "17",
                   "__timestamp": "1", "pubsubName": "kafka-pubsub", "partitionKey": "user-1",
                   "x-correlation-id": "c-9", "x-dlq-original-topic": "task-events", "x-dlq-original-partition": "2",
                   "x-dlq-original-offset": "17", "x-dlq-app-id": "worker", "x-dlq-reason": "failed",
                   "x-dlq-status": "500", "x-dlq-error": "boom", "x-dlq-attempts": "3"}
DAPRD_HEADERS = {"__key": "user-1", "__topic": "task-events", "__partition": "1", "__offset": "5",
                 "partitionKey": "user-1"}


def test_a_sandbox_dead_letter_tells_where_it_came_from_and_why() -> None:
    d = letter(headers=SIDECAR_HEADERS)
    assert (d.event_id, d.event_type, d.original_topic, d.original_partition, d.original_offset) == (
        "e-1", "todo.task.created.v1", "task-events", 2, 17)
    assert (d.app_id, d.attempts, d.header_reason) == ("worker", 3, "failed (HTTP 500): boom")
    assert (d.position, d.coordinates) == ("0/0", f"{DLQ}/0/0")


class Logs:
    """A FailureReasons: in the cluster the Loki source answers this from the logs."""

    def __init__(self, reasons: dict[str, str]) -> None:
        self.reasons = reasons

    def reason_for(self, event_id: str) -> str | None:
        return self.reasons.get(event_id)


def test_a_daprd_dead_letter_has_no_reason_of_its_own_and_takes_the_logs() -> None:
    d = letter(headers=DAPRD_HEADERS)
    assert (d.original_topic, d.original_partition, d.header_reason) == ("task-events", 1, None)
    assert failure_reason(d, None) is None
    assert failure_reason(d, Logs({"e-1": "HTTP 500 from /events/task-events"})) == "HTTP 500 from /events/task-events"
    assert failure_reason(letter(headers=SIDECAR_HEADERS), Logs({"e-1": "ignored"})) == "failed (HTTP 500): boom"


def test_a_message_that_is_not_a_cloudevent_has_no_event_fields() -> None:
    d = letter(value=b"\x00not json")
    assert (d.cloudevent, d.event_id, d.event_type) == (None, None, None)
    assert letter(value=b'{"no": "specversion"}').cloudevent is None


def test_redrive_keeps_the_producers_headers_and_adds_the_count_and_origin() -> None:
    headers = dict(redrive_headers(letter(headers={**SIDECAR_HEADERS, "x-todo-redrive-count": "1"}), 2))
    assert headers == {"partitionKey": b"user-1", "x-correlation-id": b"c-9", "x-todo-redrive-count": b"2",
                       "x-todo-redriven-from": f"{DLQ}/0/0".encode()}


def entry(coords: str, claim: str, state: LedgerState, offset: int, event_id: str = "e-1",
          by: str = "ana@host", at: float = NOW) -> LedgerEntry:
    return LedgerEntry(coords, claim, state, at, by, event_id, "task-events", 2, 40 + offset if state == "redriven" else None,
                       1, None, offset)


def redriven(coords: str, claim: str, offset: int, event_id: str = "e-1", at: float = NOW) -> list[LedgerEntry]:
    return [entry(coords, claim, "claimed", offset, event_id, at=at),
            entry(coords, claim, "redriven", offset + 1, event_id, at=at)]


def test_the_first_claim_holds_a_dead_letter_and_later_claims_lose() -> None:
    c = f"{DLQ}/0/0"
    ledger = Ledger([entry(c, "b", "claimed", 1, by="bo@host"), entry(c, "a", "claimed", 0),
                     entry(c, "b", "redriven", 3), entry(c, "a", "redriven", 2)])
    holder = ledger.holder(c)
    assert holder is not None
    assert (holder.claim, holder.state, holder.by) == ("a", "redriven", "ana@host")


def test_a_failed_claim_frees_the_dead_letter_and_an_unfinished_one_keeps_it() -> None:
    c = f"{DLQ}/0/0"
    assert Ledger([entry(c, "a", "claimed", 0), entry(c, "a", "failed", 1)]).holder(c) is None
    retried = Ledger([entry(c, "a", "claimed", 0), entry(c, "a", "failed", 1), entry(c, "b", "claimed", 2)])
    assert retried.holder(c).claim == "b"  # type: ignore[union-attr]
    assert Ledger([entry(c, "a", "claimed", 0)]).holder(c).state == "claimed"  # type: ignore[union-attr]


def test_ledger_records_round_trip_and_foreign_records_are_ignored() -> None:
    e = entry(f"{DLQ}/0/3", "a", "redriven", -1)
    record = KafkaRecord("console-redrive-ledger", 0, 7, NOW, b"k", e.to_json())
    back = LedgerEntry.from_record(record)
    assert back is not None
    assert back == LedgerEntry(**{**e.__dict__, "ledger_offset": 7})
    assert LedgerEntry.from_record(KafkaRecord("l", 0, 1, NOW, None, b"garbage")) is None
    assert LedgerEntry.from_record(KafkaRecord("l", 0, 1, NOW, None, b'{"claim": "x"}')) is None


def test_the_plan_redrives_to_the_original_partition_and_refuses_what_it_must() -> None:
    fresh = letter(0, headers=SIDECAR_HEADERS)
    done = letter(1, headers=SIDECAR_HEADERS, value=event("e-2"))
    poison = letter(2, headers={**DAPRD_HEADERS, "x-todo-redrive-count": "3"}, value=event("e-3"))
    orphan = letter(3, value=event("e-4"))  # no headers: the wiring names the topic
    gone = letter(4, headers={**DAPRD_HEADERS, "__topic": "deleted-topic"}, value=event("e-5"))
    moved = letter(5, headers={**DAPRD_HEADERS, "__partition": "9"}, value=event("e-6"))
    ledger = Ledger(redriven(done.coordinates, "a", 0, "e-2"))
    plan = plan_redrive([fresh, done, poison, orphan, gone, moved], ledger, partitions={"task-events": 3},
                        subscriptions=[SUB])
    assert [(i.action, i.target_topic, i.target_partition, i.redrive_count) for i in plan] == [
        ("redrive", "task-events", 2, 1), ("refuse", None, None, 0), ("refuse", None, None, 0),
        ("redrive", "task-events", None, 1), ("refuse", None, None, 0), ("redrive", "task-events", None, 1)]
    assert plan[1].reason == "already redriven to task-events[2]@41 by ana@host"
    assert plan[2].reason == "poison: redriven 3 times already (limit 3)"
    assert plan[4].reason == "original topic deleted-topic does not exist"
    assert plan[5].reason == "to task-events (partition by key), redrive 1"


def test_the_ledger_counts_redrives_of_an_event_whose_headers_were_lost() -> None:
    """A redriven message that failed again arrives as a new dead letter; if its headers were dropped on the
    way, the ledger still knows how often this CloudEvent was redriven."""
    again = letter(9, headers=DAPRD_HEADERS)
    ledger = Ledger([e for i in range(2) for e in redriven(f"{DLQ}/0/{i}", f"c{i}", 2 * i, at=NOW - 3600)])
    (item,) = plan_redrive([again], ledger, partitions={"task-events": 3}, poison_after=3)
    assert (item.action, item.redrive_count) == ("redrive", 3)
    (refused,) = plan_redrive([again], ledger, partitions={"task-events": 3}, poison_after=2)
    assert refused.reason == "poison: redriven 2 times already (limit 2)"


def test_an_unknown_origin_with_ambiguous_wiring_is_refused() -> None:
    other = SubscriptionInfo("x", "todo-app", "audit", "kafka-pubsub", "reminders", None, DLQ, True)
    (item,) = plan_redrive([letter(0)], Ledger(), partitions={"task-events": 3, "reminders": 1},
                           subscriptions=[SUB, other])
    assert item.reason == "original topic unknown (no __topic header)"


def test_selection_by_id_position_type_age_and_reason() -> None:
    d = letter(4, headers=SIDECAR_HEADERS, age=3600)
    reason = d.header_reason
    assert Selection(ids=frozenset({"e-1"})).matches(d, NOW, reason)
    assert Selection(ids=frozenset({"0/4"})).matches(d, NOW, reason)
    assert not Selection(ids=frozenset({"0/5"})).matches(d, NOW, reason)
    assert Selection(event_type="todo.task.created.v1").matches(d, NOW, reason)
    assert not Selection(event_type="todo.task.deleted.v1").matches(d, NOW, reason)
    assert Selection(older_than_s=1800).matches(d, NOW, reason)
    assert not Selection(older_than_s=7200).matches(d, NOW, reason)
    assert Selection(reason="HTTP 500").matches(d, NOW, reason)
    assert not Selection(reason="timeout").matches(d, NOW, reason)
    assert Selection(everything=True).matches(d, NOW, None)
    with pytest.raises(ValueError, match="say which"):
        Selection()


def test_dead_lettered_time_prefers_the_sidecar_header() -> None:
    d = letter(headers={"x-dlq-time": str(int((NOW - 10) * 1000))}, age=99)
    assert d.dead_lettered_at == pytest.approx(NOW - 10)
    assert letter(age=99).dead_lettered_at == pytest.approx(NOW - 99)


def test_summary_counts_pending_waiting_redriven_and_the_last_hour() -> None:
    tp = TopicPartition(DLQ, 0)
    letters = [letter(i, value=event(f"e-{i}"), age=age) for i, age in enumerate((7200, 3000, 1200, 60, 30))]
    ledger = Ledger(redriven(letters[3].coordinates, "a", 0, "e-3"))
    s = summarize(DLQ, [SUB], {tp: PartitionOffsets(0, 5)}, {tp: 1}, letters, ledger, NOW, True)
    assert (s.total, s.pending, s.waiting, s.redriven, s.last_hour) == (5, 4, 3, 1, 4)
    assert s.oldest_waiting_at == pytest.approx(NOW - 3000)
    assert (s.apps, s.original_topics) == (["worker"], ["task-events"])


def test_purge_takes_everything_read_or_the_old_prefix_of_each_partition() -> None:
    tp0, tp1 = TopicPartition(DLQ, 0), TopicPartition(DLQ, 1)
    offsets = {tp0: PartitionOffsets(0, 4), tp1: PartitionOffsets(2, 3)}
    pending = [letter(0, age=5000), letter(1, age=4000), letter(2, age=10), letter(3, age=9000),
               letter(2, age=6000, partition=1)]
    everything = plan_purge(DLQ, offsets, {tp0: 1}, pending, NOW)
    assert (dict(everything.before), everything.count) == ({tp0: 4, tp1: 3}, 3 + 1)
    old = plan_purge(DLQ, offsets, {}, pending, NOW, older_than_s=3600)
    assert (dict(old.before), old.count) == ({tp0: 2, tp1: 3}, 2 + 1)  # offset 2 is young: it stops partition 0
    assert plan_purge(DLQ, {tp0: PartitionOffsets(4, 4)}, {}, [], NOW).before == {}


def test_one_copy_per_event_when_several_subscribers_dead_lettered_it() -> None:
    """worker and audit both read task-events; both dead-lettered the event: one copy reaches both again."""
    worker = letter(0, headers={**SIDECAR_HEADERS, "x-dlq-app-id": "worker"})
    audit = letter(1, headers={**SIDECAR_HEADERS, "x-dlq-app-id": "audit"})
    first, second = plan_redrive([worker, audit], Ledger(), partitions={"task-events": 3})
    assert (first.action, first.with_letter) == ("redrive", None)
    assert (second.action, second.with_letter, second.target_partition) == ("redrive", worker.coordinates, 2)
    assert second.reason == "with 0/0: one copy of the event reaches every subscriber"


def test_a_dead_letter_of_an_event_redriven_since_is_superseded_and_a_new_failure_is_not() -> None:
    audit_copy = letter(1, headers={**SIDECAR_HEADERS, "x-dlq-time": str(int((NOW - 100) * 1000))})
    redriven_at = NOW - 50  # the worker's dead letter 0/0 of the same event was redriven after audit's
    ledger = Ledger([LedgerEntry(f"{DLQ}/0/0", "a", "claimed", redriven_at, "ana@host", "e-1", ledger_offset=0),
                     LedgerEntry(f"{DLQ}/0/0", "a", "redriven", redriven_at, "ana@host", "e-1", "task-events", 2, 40,
                                 1, ledger_offset=1)])
    settled = ledger.settled_by(audit_copy)
    assert settled is not None
    assert letter_state(audit_copy, settled) == "superseded"
    (item,) = plan_redrive([audit_copy], ledger, partitions={"task-events": 3})
    assert item.reason == "superseded: its event was redriven to task-events[2]@40 by ana@host after it was dead-lettered"
    failed_again = letter(7, headers={**SIDECAR_HEADERS, "x-todo-redrive-count": "1",
                                      "x-dlq-time": str(int((NOW - 10) * 1000))})
    assert ledger.settled_by(failed_again) is None
    (again,) = plan_redrive([failed_again], ledger, partitions={"task-events": 3})
    assert (again.action, again.redrive_count) == ("redrive", 2)
    shared = LedgerEntry(f"{DLQ}/0/1", "a", "redriven", redriven_at, "ana@host", "e-1", "task-events", 2, 40, 1,
                         ledger_offset=2)
    together = Ledger([*ledger.entries(), replace(shared, state="claimed", ledger_offset=2),
                       replace(shared, ledger_offset=3)])
    assert together.redrives_of("e-1") == 1  # two dead letters, one copy
    assert letter_state(failed_again, None) == "waiting"


def test_the_copy_failing_again_is_waiting_whatever_the_clocks_say() -> None:
    """The redriven copy (task-events[2]@40, redrive 1) fails and is dead-lettered within milliseconds, before
    the console wrote its ledger outcome (or on a node whose clock is behind): its dead letter is the copy's
    own failure, waiting, because it carries the copy's redrive count, or else comes from the copy's offset.
    A retry of an older delivery dead-lettered after the redrive is still superseded: the copy follows it."""
    redriven_at = NOW - 10
    ledger = Ledger([LedgerEntry(f"{DLQ}/0/0", "a", "claimed", redriven_at, "ana@host", "e-1", ledger_offset=0),
                     LedgerEntry(f"{DLQ}/0/0", "a", "redriven", redriven_at, "ana@host", "e-1", "task-events", 2, 40,
                                 1, ledger_offset=1)])
    early = {**SIDECAR_HEADERS, "x-dlq-time": str(int((redriven_at - 0.5) * 1000))}
    copy_failed = letter(7, headers={**early, "x-todo-redrive-count": "1", "x-dlq-original-offset": "40"})
    assert ledger.settled_by(copy_failed) is None
    headerless = letter(8, headers={**early, "x-dlq-original-offset": "40"})  # a sidecar that dropped the count
    assert ledger.settled_by(headerless) is None
    slow_retry = letter(9, headers={**SIDECAR_HEADERS, "x-dlq-time": str(int((NOW - 1) * 1000))})  # from @17
    settled = ledger.settled_by(slow_retry)
    assert settled is not None
    assert letter_state(slow_retry, settled) == "superseded"
    elsewhere = {**SIDECAR_HEADERS, "x-dlq-original-partition": "0"}  # not the copy's partition: by time
    assert ledger.settled_by(letter(10, headers={**elsewhere, "x-dlq-time": str(int((NOW - 20) * 1000))})) is not None
    assert ledger.settled_by(letter(11, headers={**elsewhere, "x-dlq-time": str(int((NOW - 5) * 1000))})) is None
