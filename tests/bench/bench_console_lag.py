"""Lag for 50 consumer groups over 300 partitions: how many broker requests, how many milliseconds.

Run by hand: ``python tests/bench/bench_console_lag.py [--groups 50] [--topics 30] [--partitions 10]``.

One tansu broker behind a counting TCP proxy (tests/utils/kafka_proxy.py) that reads the api key of every
request frame, so the counts are what went over the wire, the client library's own requests included. The
broker advertises the proxy's address, so no connection goes around it.

Set-up: 30 topics x 10 partitions = 300 partitions, 20 records each; 50 groups, each consuming 3 topics (30
partitions, 1,500 group-partitions in all), committed at a random offset per partition, so most of them lag
and need the timestamp of the record at their committed offset.

Measured, each with the requests by kind and the wall time:
- cold: a new KafkaSource reads every group the broker lists (ListGroups, FindCoordinator, DescribeGroups,
  OffsetFetch, Metadata, ListOffsets, Fetch for end offsets, Fetch for the timestamps);
- warm: the same source again, nothing moved (coordinators and record timestamps cached), 10 times;
- moved: every group committed further, so every timestamp is read afresh;
- the lag engine alone (history of 20 snapshots, then `evaluate`): CPU milliseconds, for the dashboard.
Writes tests/bench/results/console_lag.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from console.model.kafka import TopicPartition
from console.model.lag import LagHistory, evaluate
from console.sources.kafka import KafkaSource
from tests.utils.kafka_proxy import CountingProxy, tansu_behind_proxy

RESULTS = REPO / "tests" / "bench" / "results" / "console_lag.json"
RECORDS = 20


def populate(bootstrap: str, groups: int, topics: int, partitions: int, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    names = [f"bench-t{i:02d}" for i in range(topics)]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=65536)
    for name in names:
        for p in range(partitions):
            for i in range(RECORDS):
                producer.send(name, value=b"record %d" % i, partition=p)
    producer.flush()
    producer.close()
    consumed = {f"bench-g{g:02d}": [names[(g + k * (topics // 3)) % topics] for k in range(3)] for g in range(groups)}
    commit_all(bootstrap, consumed, partitions, rng, low=0)
    return consumed


def commit_all(bootstrap: str, consumed: dict[str, list[str]], partitions: int, rng: random.Random, low: int) -> None:
    with KafkaSource(bootstrap) as source:
        for group, topics in consumed.items():
            source.commit(group, {TopicPartition(t, p): rng.randint(low, RECORDS)
                                  for t in topics for p in range(partitions)})


def measure(proxy: CountingProxy, action: Any) -> tuple[Any, float, float, Counter[str]]:
    proxy.take()
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, proxy.take()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--topics", type=int, default=30)
    parser.add_argument("--partitions", type=int, default=10)
    args = parser.parse_args()
    report: dict[str, Any] = {"groups": args.groups, "partitions": args.topics * args.partitions,
                              "group_partitions": args.groups * 3 * args.partitions}
    with tempfile.TemporaryDirectory() as tmp, tansu_behind_proxy(Path(tmp) / "broker") as (bootstrap, proxy):
        consumed = populate(bootstrap, args.groups, args.topics, args.partitions)
        with KafkaSource(bootstrap) as source:
            snap, ms, cpu, counts = measure(proxy, source.lag_snapshot)
            assert len(snap.groups) == args.groups, sorted(snap.groups)
            lagging = len(snap.record_times)
            unread = sum(1 for v in snap.record_times.values() if v is None)
            report["cold"] = {"ms": round(ms, 1), "cpu_ms": round(cpu, 1), "requests": sum(counts.values()),
                              "by_kind": dict(counts), "lagging_offsets": lagging, "timestamps_unread": unread}
            warm = [measure(proxy, source.lag_snapshot) for _ in range(10)]
            report["warm"] = {"ms_p50": round(statistics.median(w[1] for w in warm), 1),
                              "ms_max": round(max(w[1] for w in warm), 1),
                              "cpu_ms_p50": round(statistics.median(w[2] for w in warm), 1),
                              "requests": sum(warm[-1][3].values()), "by_kind": dict(warm[-1][3])}
            commit_all(bootstrap, consumed, args.partitions, random.Random(11), low=RECORDS // 2)
            snap, ms, cpu, counts = measure(proxy, source.lag_snapshot)
            report["moved"] = {"ms": round(ms, 1), "cpu_ms": round(cpu, 1), "requests": sum(counts.values()),
                               "by_kind": dict(counts), "lagging_offsets": len(snap.record_times),
                               "timestamps_unread": sum(1 for v in snap.record_times.values() if v is None)}
            snapshots = [source.lag_snapshot() for _ in range(3)]
    history = LagHistory()
    started = time.process_time()
    for i in range(20):  # the dashboard's history: 20 refreshes of the same shape, 2 s apart
        base = snapshots[i % len(snapshots)]
        history.add(type(base)(base.at + 2 * i, base.partitions, base.groups, base.record_times))
    add_ms = (time.process_time() - started) * 1000 / 20
    started = time.process_time()
    groups = evaluate(history)
    report["engine"] = {"add_snapshot_cpu_ms": round(add_ms, 2),
                        "evaluate_cpu_ms": round((time.process_time() - started) * 1000, 1),
                        "groups": len(groups), "partitions_judged": sum(len(g.partitions) for g in groups)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
