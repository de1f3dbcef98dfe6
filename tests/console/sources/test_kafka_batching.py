"""A lag read costs the same number of broker requests for 2 groups on 6 partitions as for 10 groups on 60:
counted on the wire by a proxy that reads each request's api key (the benchmark measures 50 groups on 300)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from console.model.kafka import TopicPartition
from console.sandbox.broker import BrokerError, tansu_binary
from console.sources.kafka import FETCH_ROUNDS, KafkaSource
from tests.utils.kafka_proxy import CountingProxy, tansu_behind_proxy
from tests.utils.required import require

pytestmark = pytest.mark.broker


def populate(bootstrap: str, prefix: str, groups: int, topics: int, partitions: int) -> list[str]:
    """Topics with a few records per partition, and groups each committed at its own offsets (so every
    group lags on every partition and needs the timestamp of its own committed record)."""
    names = [f"{prefix}-t{i}" for i in range(topics)]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for name in names:
        for p in range(partitions):
            for i in range(groups + 2):
                producer.send(name, value=b"%d" % i, partition=p)
    producer.flush()
    producer.close()
    group_names = [f"{prefix}-g{i}" for i in range(groups)]
    with KafkaSource(bootstrap) as source:
        for i, g in enumerate(group_names):
            source.commit(g, {TopicPartition(n, p): i for n in names for p in range(partitions)})
    return group_names


def requests_for(bootstrap: str, proxy: CountingProxy, groups: list[str]) -> tuple[Counter[str], Counter[str]]:
    proxy.take()
    with KafkaSource(bootstrap) as source:
        cold = source.lag_snapshot(groups)
        cold_counts = proxy.take()
        warm = source.lag_snapshot(groups)
        warm_counts = proxy.take()
    assert len(cold.partitions) == len(warm.partitions)
    assert all(t is not None for t in cold.record_times.values())
    return cold_counts, warm_counts


def test_requests_do_not_grow_with_groups_or_partitions(tmp_path: Path) -> None:
    require(tansu_binary, BrokerError, "the tansu broker (install the 'sandbox' extra)")
    with tansu_behind_proxy(tmp_path / "broker") as (bootstrap, proxy):
        small = populate(bootstrap, "small", groups=2, topics=2, partitions=3)
        large = populate(bootstrap, "large", groups=10, topics=6, partitions=10)
        small_cold, small_warm = requests_for(bootstrap, proxy, small)
        large_cold, large_warm = requests_for(bootstrap, proxy, large)
    # One request of each kind to the one broker, whatever the number of groups and partitions. Fetch may
    # take a further round when tansu runs out of its wait before reading every partition (bounded).
    assert without_fetch(large_cold) == without_fetch(small_cold)
    assert without_fetch(large_warm) == without_fetch(small_warm) == Counter(
        {"DescribeGroups": 1, "OffsetFetch": 1, "Metadata": 1, "ListOffsets": 1})
    assert large_warm["Fetch"] <= FETCH_ROUNDS  # warm: record timestamps are cached, only the end offsets
    assert large_cold["Fetch"] <= 2 * FETCH_ROUNDS
    assert small_cold["Fetch"] == 2  # end offsets, then the timestamps at every committed offset


def without_fetch(counts: Counter[str]) -> Counter[str]:
    return Counter({k: v for k, v in counts.items() if k != "Fetch"})
