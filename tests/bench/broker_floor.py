"""The raw broker floor: what the same events cost when nothing but a C Kafka client moves them.

After a load run, the sandbox's broker is given the traffic the run gave it, without the services
or sidecars: `messages` records of the run's mean event size, produced one at a time with
acks=all (as a sidecar publishes) at the run's event rate, each read back by `readers` consumers
(every event has two subscribers: its consumer and the audit service) with the sidecars' fetch
wait. The client is librdkafka (confluent-kafka), so the figure is the broker's own cost per event
and a lower bound for a client's, beside what the sidecars and tansu spent per event in the run.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

TOPIC = "bench-broker-floor"  # unknown to every Subscription, so no sidecar reads it


@dataclass(frozen=True)
class FloorRun:
    messages: int
    seconds: float
    client_cpu_s: float  # this process: librdkafka's threads and the Python driving them


def watermarks(bootstrap: str, topics: list[str]) -> int:
    """Sum of the high watermarks of `topics`: how many records they hold."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-wm-{uuid.uuid4().hex[:8]}"})
    try:
        metadata = consumer.list_topics(timeout=10)
        total = 0
        for topic in topics:
            described = metadata.topics.get(topic)
            for partition in described.partitions if described is not None else ():
                total += consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        return total
    finally:
        consumer.close()


def mean_size(bootstrap: str, topic: str, sample: int = 20) -> int:
    """Mean value size of the last `sample` records of `topic` (the run's events as published)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-size-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    try:
        sizes: list[int] = []
        for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                consumer.assign([TopicPartition(topic, partition, max(low, high - sample))])
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    message = consumer.poll(0.5)
                    if message is None or message.error():
                        continue
                    sizes.append(len(message.value() or b""))
                    if (message.offset() or 0) >= high - 1:
                        break
        return round(sum(sizes) / len(sizes)) if sizes else 1000
    finally:
        consumer.close()


def run(bootstrap: str, messages: int, rate_per_s: float, size: int, readers: int = 2,
        fetch_wait_ms: int = 25) -> FloorRun:
    """Produce `messages` at `rate_per_s`, each acknowledged before the next; wait until each of
    `readers` consumers has read them all."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                         "enable.idempotence": False})
    producer.produce(TOPIC, b"warm-up")  # tansu creates the topic on first use
    producer.flush(10)
    low_high = _partition_ends(bootstrap)
    counts = [0] * readers
    stop = threading.Event()
    threads = [threading.Thread(target=_read, args=(bootstrap, low_high, counts, n, stop, fetch_wait_ms),
                                daemon=True) for n in range(readers)]
    payload = os.urandom(size)
    cpu_before, started = _own_cpu(), time.monotonic()
    for thread in threads:
        thread.start()
    interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
    for n in range(messages):
        producer.produce(TOPIC, payload, key=str(n).encode())
        producer.flush(10)
        pause = started + (n + 1) * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    deadline = time.monotonic() + 60
    while min(counts) < messages and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join(10)
    if min(counts) < messages:
        raise KafkaException(f"broker floor: readers got {counts} of {messages} records")
    return FloorRun(messages, time.monotonic() - started, _own_cpu() - cpu_before)


def _partition_ends(bootstrap: str) -> list[tuple[int, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-floor-{uuid.uuid4().hex[:8]}"})
    try:
        partitions = consumer.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
        return [(p, consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]) for p in partitions]
    finally:
        consumer.close()


def _read(bootstrap: str, starts: list[tuple[int, int]], counts: list[int], n: int, stop: threading.Event,
          fetch_wait_ms: int) -> None:
    """One reader: assigned every partition from the current end (no group, as the sidecars)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-floor-{n}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": fetch_wait_ms})
    consumer.assign([TopicPartition(TOPIC, p, offset) for p, offset in starts])
    try:
        while not stop.is_set():
            message = consumer.poll(0.1)
            if message is not None and not message.error():
                counts[n] += 1
    finally:
        consumer.close()


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system
