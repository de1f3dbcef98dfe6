"""The Kafka source against the real broker (tansu, or KAFKA_BOOTSTRAP), its figures cross-checked with a second,
independent client: confluent-kafka (librdkafka), which commits the offsets, counts the records a consumer would
still read, and reports the high watermark from its own fetches."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka as ck
import pytest
from kafka import KafkaProducer

from console.model.kafka import LagSnapshot, OutgoingRecord, TopicPartition
from console.model.lag import EvalConfig, LagHistory, PartitionStatus, evaluate
from console.sandbox.broker import Broker, BrokerError, start_tansu, tansu_binary
from console.sandbox.ports import free_port
from console.sources.health import SourceError
from console.sources.kafka import KafkaSource
from tests.utils.kafka_topics import create_topics
from tests.utils.required import require
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.broker
TANSU = not os.environ.get("KAFKA_BOOTSTRAP")


@dataclass
class Fixture:
    bootstrap: str
    topic: str
    source: KafkaSource


@pytest.fixture(scope="module")
def kafka(kafka_broker: Broker) -> Iterator[Fixture]:
    """A topic of 3 partitions: partition 0 gets a batch of 10 records, then a batch of 3 (so on tansu
    ListOffsets(latest) answers 11 where the end is 13), partition 1 one record, partition 2 none."""
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker.bootstrap, {topic: 3})
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=200)
    for batch in (10, 3):
        for i in range(batch):
            producer.send(topic, key=b"k", value=f"r{i}".encode(), partition=0, headers=[("h", b"v")])
        producer.flush()
    producer.send(topic, value=b"lonely", partition=1)
    producer.flush()
    producer.close()
    source = KafkaSource(kafka_broker.bootstrap)
    yield Fixture(kafka_broker.bootstrap, topic, source)
    source.close()


def independent(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, tuple[int | None, int, int,
                                                                                           float | None]]:
    """librdkafka's view per partition: (committed, high watermark from its fetches, records after the commit,
    timestamp of the first of them)."""
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                            "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        committed = consumer.committed([ck.TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        found = {}
        for tp in committed:
            start = tp.offset if tp.offset >= 0 else ck.OFFSET_BEGINNING
            consumer.assign([ck.TopicPartition(topic, tp.partition, start)])
            count, first = 0, None
            while True:
                message = consumer.poll(10)
                assert message is not None, "librdkafka read nothing and saw no end of partition"
                error = message.error()
                if error is not None:
                    assert error.code() == ck.KafkaError._PARTITION_EOF, error
                    break
                count += 1
                if first is None:
                    first = message.timestamp()[1] / 1000.0
            _low, high = consumer.get_watermark_offsets(ck.TopicPartition(topic, tp.partition), cached=True)
            found[tp.partition] = (tp.offset if tp.offset >= 0 else None, high, count, first)
        return found
    finally:
        consumer.close()


def commit_with_librdkafka(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.assign([ck.TopicPartition(topic, p, o) for p, o in offsets.items()])
        consumer.commit(offsets=[ck.TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def test_end_offsets_come_from_the_fetch_high_watermark_where_list_offsets_is_wrong(kafka: Fixture) -> None:
    tps = [TopicPartition(kafka.topic, p) for p in range(3)]
    offsets = kafka.source.partition_offsets(tps)
    assert [(o.start, o.end) for o in offsets.values()] == [(0, 13), (0, 1), (0, 0)]
    consumer = ck.Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"probe-{uuid.uuid4().hex[:6]}"})
    try:
        _low, listed = consumer.get_watermark_offsets(ck.TopicPartition(kafka.topic, 0), timeout=10, cached=False)
    finally:
        consumer.close()
    # ListOffsets(latest), asked by librdkafka: the last batch's base offset + 1 on tansu, the truth on Kafka.
    assert listed == (11 if TANSU else 13)


def test_lag_matches_what_an_independent_client_commits_and_reads(kafka: Fixture) -> None:
    group = f"crosscheck-{uuid.uuid4().hex[:6]}"
    commit_with_librdkafka(kafka.bootstrap, group, kafka.topic, {0: 4, 1: 1})
    snapshot = kafka.source.lag_snapshot([group])
    history = LagHistory()
    history.add(snapshot)
    (report,) = evaluate(history)
    truth = independent(kafka.bootstrap, group, kafka.topic, 3)
    ours = {p.tp.partition: p for p in report.partitions}
    assert set(ours) == {0, 1, 2}  # every partition of a topic the group committed on, with a commit or not
    for partition, p in ours.items():
        committed, high, remaining, first_at = truth[partition]
        assert (p.committed, p.end, p.lag) == (committed, high, remaining)
        if remaining:
            assert first_at is not None
            assert committed is not None
            assert p.time_lag.method == "record"
            assert snapshot.record_times[(p.tp, committed)] == pytest.approx(first_at, abs=1e-3)
            assert p.time_lag.seconds == pytest.approx(snapshot.at - first_at, abs=1e-3)
        else:
            assert (p.time_lag.seconds, p.time_lag.method) == (0.0, "caught-up")
    assert report.total_lag == 9


def test_a_configured_topic_shows_partitions_never_committed_on(kafka: Fixture) -> None:
    group = f"fresh-{uuid.uuid4().hex[:6]}"
    snapshot = kafka.source.lag_snapshot([group], topics_of={group: [kafka.topic]})
    committed = snapshot.groups[group].committed
    assert committed == {TopicPartition(kafka.topic, p): None for p in range(3)}
    history = LagHistory()
    history.add(snapshot)
    (report,) = evaluate(history)
    assert [p.lag for p in report.partitions] == [13, 1, 0]  # a consumer starting at `oldest` reads it all
    assert [p.status for p in report.partitions] == [PartitionStatus.UNKNOWN, PartitionStatus.UNKNOWN, PartitionStatus.OK]


def test_lag_moves_with_commits_over_several_samples(kafka: Fixture) -> None:
    group = f"moving-{uuid.uuid4().hex[:6]}"
    history = LagHistory()
    for offset in (0, 5, 10, 13):
        kafka.source.commit(group, {TopicPartition(kafka.topic, 0): offset})
        history.add(kafka.source.lag_snapshot([group], only_topics=[kafka.topic]))
    (report,) = evaluate(history, config=EvalConfig(min_span_s=0))  # four quick samples
    (p,) = [p for p in report.partitions if p.tp.partition == 0]
    assert [s.lag for s in history.samples(group, p.tp)] == [13, 8, 3, 0]
    assert (p.status, p.trend, p.eta_s) == (PartitionStatus.OK, "shrinking", 0.0)


def test_groups_are_listed_described_and_read_in_one_go(kafka: Fixture) -> None:
    groups = [f"many-{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    for i, g in enumerate(groups):
        kafka.source.commit(g, {TopicPartition(kafka.topic, 0): i})
    assert set(groups) <= set(kafka.source.list_groups())
    committed = kafka.source.committed_offsets(groups)
    assert [committed[g][0] for g in groups] == [{TopicPartition(kafka.topic, 0): i} for i in range(4)]
    states = kafka.source.describe_groups(groups)
    assert set(states) == set(groups)
    kafka.source.commit("todo-console-dlq-probe", {TopicPartition(kafka.topic, 0): 0})
    assert "todo-console-dlq-probe" not in kafka.source.list_groups()
    assert "todo-console-dlq-probe" in kafka.source.list_groups(include_console=True)


def test_reading_records_keeps_keys_headers_and_timestamps(kafka: Fixture) -> None:
    tp = TopicPartition(kafka.topic, 0)
    records = kafka.source.read(tp, 8, limit=3)
    assert [(r.offset, r.key, r.value, r.headers) for r in records] == [
        (8, b"k", b"r8", (("h", b"v"),)), (9, b"k", b"r9", (("h", b"v"),)), (10, b"k", b"r0", (("h", b"v"),))]
    assert all(r.timestamp and abs(time.time() - r.timestamp) < 3600 for r in records)
    assert [r.offset for r in kafka.source.read(tp, 0, end=2)] == [0, 1]
    assert kafka.source.read(tp, 13) == []


def test_record_times_read_many_offsets_in_one_fetch_and_are_cached(kafka: Fixture) -> None:
    tp = TopicPartition(kafka.topic, 0)
    stamps = kafka.source.record_times([(tp, 0), (tp, 5), (tp, 12)])
    records = {r.offset: r.timestamp for r in kafka.source.read(tp, 0)}
    assert stamps == {(tp, 0): records[0], (tp, 5): records[5], (tp, 12): records[12]}
    assert kafka.source.record_times([(tp, 13)]) == {(tp, 13): None}  # nothing there yet


def test_produce_waits_for_acknowledgements_and_keeps_the_partition(kafka: Fixture) -> None:
    topic = f"produce-{uuid.uuid4().hex[:6]}"
    create_topics(kafka.bootstrap, {topic: 3})
    produced = kafka.source.produce(topic, [OutgoingRecord(b"again", b"k", (("x-a", b"1"),), 2)])
    assert [(p.topic, p.partition, p.offset) for p in produced] == [(topic, 2, 0)]
    (record,) = kafka.source.read(TopicPartition(topic, 2), 0)
    assert (record.value, record.key, record.headers) == (b"again", b"k", (("x-a", b"1"),))


def test_delete_records_deletes_on_kafka_and_says_why_not_on_tansu(kafka: Fixture) -> None:
    topic = f"purge-{uuid.uuid4().hex[:6]}"
    create_topics(kafka.bootstrap, {topic: 1})
    kafka.source.produce(topic, [OutgoingRecord(b"a"), OutgoingRecord(b"b")])
    tp = TopicPartition(topic, 0)
    outcome = kafka.source.delete_records({tp: 1})
    if TANSU:
        assert not outcome.deleted
        assert "closed the connection on DeleteRecords" in outcome.reason
    else:
        assert (outcome.deleted, dict(outcome.low_watermarks)) == (True, {tp: 1})
    assert kafka.source.partition_offsets([tp])[tp].end == 2  # the source still answers afterwards


def test_a_broker_that_is_down_is_one_error_naming_it_and_its_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    source = KafkaSource(address, timeout_s=1.0)
    with pytest.raises(SourceError) as caught:
        source.lag_snapshot()
    assert str(caught.value).startswith(f"kafka at {address}: no broker answers")
    assert "\n" not in str(caught.value)


def test_the_source_recovers_when_the_broker_comes_back(tmp_path: Path) -> None:
    """The dashboard keeps one source: a broker that goes away is an error, and the next read after it is
    back works again (tansu's memory storage forgets the topic, so it is made again)."""
    require(tansu_binary, BrokerError, "the tansu broker (install the 'sandbox' extra)")
    port = free_port()
    broker = start_tansu(tmp_path / "first", port=port)
    source = KafkaSource(broker.bootstrap, timeout_s=1.0)
    try:
        create_topics(broker.bootstrap, {"comeback": 1})
        source.commit("g", {TopicPartition("comeback", 0): 0})
        assert source.lag_snapshot(["g"]).groups["g"].committed == {TopicPartition("comeback", 0): 0}
        broker.stop()
        with pytest.raises(SourceError):
            source.lag_snapshot(["g"])
        broker = start_tansu(tmp_path / "second", port=port)
        create_topics(broker.bootstrap, {"comeback": 1})
        source.commit("g", {TopicPartition("comeback", 0): 0})
        snapshot = wait_until(lambda: _read(source), 30, 0.5, "a read through the same source")
        assert snapshot.groups["g"].committed == {TopicPartition("comeback", 0): 0}
    finally:
        source.close()
        broker.stop()


def _read(source: KafkaSource) -> LagSnapshot | None:
    try:
        return source.lag_snapshot(["g"])
    except SourceError:
        return None
