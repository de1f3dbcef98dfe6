"""The raw floor of the sandbox broker, durable (tansu on the local S3) beside memory, without the sidecars:
what a plain kafka-python-ng client gets, per fetch wait and per producer linger.

Run by hand: ``python tests/bench/bench_broker_floor.py [--records 2000] [--partitions 3]``.
For each storage (memory://, then s3:// on the sandbox's local S3) it starts a fresh broker and:

- produces `--records` records one at a time (one record a batch, the sidecar's pattern when it is
  idle), then reads them back from the beginning with a consumer per fetch wait (`--waits`): records/s,
  records per fetch response, the client's mean fetch latency, and the CPU of the broker and the S3;
- produces `--records` more with 16 concurrent senders (the outbox relay's concurrency) per
  (linger_ms, max_in_flight) setting: records/s and records per produce request.

tansu 0.6.0 bounds all of a fetch's storage work by the fetch's max wait, so on s3:// the wait decides
how much a fetch can carry (see console/sandbox/catalog.py KAFKA_TUNING). Debian's kcat (librdkafka
2.0.2) cannot read tansu's ApiVersions v3 answer, so the independent client here is kafka-python-ng.
Prints the figures and writes tests/bench/results/broker_floor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from console.sandbox.broker import Broker, start_tansu
from console.sandbox.s3 import LocalS3, start_local_s3
from tests.bench.bench_delivery import cpu_seconds, cpu_share

RESULTS = REPO / "tests" / "bench" / "results" / "broker_floor.json"
SENDERS = 16
PRODUCER_SETTINGS = ((0, 5), (0, 1), (5, 5))  # (linger_ms, max_in_flight_requests_per_connection)
VALUE = b"x" * 500  # about one task event


def start(storage: str, work: Path) -> tuple[Broker, LocalS3 | None]:
    if storage == "memory":
        return start_tansu(work / "broker"), None
    s3 = start_local_s3(work / "s3", work / "s3.log")
    return start_tansu(work / "broker", storage_url=s3.storage_url, extra_env=s3.tansu_env()), s3


def pids(broker: Broker, s3: LocalS3 | None) -> dict[str, int | None]:
    return {"broker": broker.process.pid if broker.process else None,
            "s3": s3.process.pid if s3 is not None and s3.process is not None else None}


def read_back(bootstrap: str, topic: str, partitions: int, records: int, wait_ms: int) -> dict[str, Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=wait_ms)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    started, got = time.monotonic(), 0
    while got < records and time.monotonic() - started < 300:
        got += sum(len(batch) for batch in consumer.poll(timeout_ms=100).values())
    took = time.monotonic() - started
    metrics = consumer.metrics().get("consumer-fetch-manager-metrics", {})
    consumer.close()
    return {"fetch_max_wait_ms": wait_ms, "records": got, "seconds": round(took, 2),
            "records_per_s": round(got / took), "records_per_fetch": round(metrics.get("records-per-request-avg", 0), 1),
            "fetch_latency_ms": round(metrics.get("fetch-latency-avg", 0))}


def produce_concurrently(bootstrap: str, topic: str, records: int, linger_ms: int, in_flight: int) -> dict[str, Any]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms,
                             max_in_flight_requests_per_connection=in_flight)
    left = iter(range(records))
    lock = threading.Lock()

    def sender() -> None:
        while True:
            with lock:
                n = next(left, None)
            if n is None:
                return
            producer.send(topic, VALUE, key=str(n).encode()).get(30)

    started = time.monotonic()
    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    metrics = producer.metrics().get("producer-metrics", {})
    producer.close()
    return {"linger_ms": linger_ms, "max_in_flight": in_flight, "records_per_s": round(records / took),
            "records_per_request": round(metrics.get("records-per-request-avg", 0), 1)}


def run_storage(storage: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"floor-{storage}-") as tmp:
        broker, s3 = start(storage, Path(tmp))
        try:
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
            admin.create_topics([NewTopic("floor", args.partitions, 1)] +
                                [NewTopic(f"floor-produce-{i}", args.partitions, 1) for i in range(len(PRODUCER_SETTINGS))])
            admin.close()
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0)
            started = time.monotonic()
            for n in range(args.records):
                producer.send("floor", VALUE, key=str(n).encode()).get(30)
            produced_s = time.monotonic() - started
            producer.close()
            reads = []
            running = pids(broker, s3)
            for wait in args.waits:
                before, started = {name: cpu_seconds(pid) for name, pid in running.items()}, time.monotonic()
                reads.append(read_back(broker.bootstrap, "floor", args.partitions, args.records, wait))
                reads[-1]["cpu_cores"] = cpu_share(before, running, time.monotonic() - started)
            writes = [produce_concurrently(broker.bootstrap, f"floor-produce-{i}", args.records, linger, in_flight)
                      for i, (linger, in_flight) in enumerate(PRODUCER_SETTINGS)]
        finally:
            broker.stop()
            if s3 is not None:
                s3.stop()
    return {"one_at_a_time_produce_per_s": round(args.records / produced_s), "reads": reads, "writes": writes}


def print_summary(summary: dict[str, Any]) -> None:
    print(f"{summary['records']} records over {summary['partitions']} partitions, load average {summary['load_average']:.1f}")
    for storage in ("memory", "durable"):
        r = summary[storage]
        print(f"{storage:8} produce one at a time: {r['one_at_a_time_produce_per_s']} records/s")
        for read in r["reads"]:
            print(f"         read, fetch wait {read['fetch_max_wait_ms']:>4} ms: {read['records_per_s']} records/s, "
                  f"{read['records_per_fetch']} records a fetch, fetch latency {read['fetch_latency_ms']} ms, "
                  f"CPU {read['cpu_cores']}")
        for write in r["writes"]:
            print(f"         produce, {SENDERS} senders, linger {write['linger_ms']} ms, in flight {write['max_in_flight']}: "
                  f"{write['records_per_s']} records/s, {write['records_per_request']} records a request")
    print(f"written to {RESULTS.relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--waits", type=lambda text: [int(w) for w in text.split(",")], default=[25, 100, 500],
                        help="consumer fetch_max_wait_ms values, comma-separated")
    args = parser.parse_args()
    if args.records <= 0 or args.partitions <= 0 or any(w < 0 for w in args.waits):
        print("bench_broker_floor: --records and --partitions must be above 0, --waits not negative", file=sys.stderr)
        return 2
    summary: dict[str, Any] = {"bench": "broker_floor", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "cpus": os.cpu_count(), "records": args.records, "partitions": args.partitions}
    for storage in ("memory", "durable"):
        summary[storage] = run_storage(storage, args)
    summary["load_average"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
