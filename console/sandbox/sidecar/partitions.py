"""One worker thread per Kafka partition: each partition in order, partitions in parallel.

The Kafka component hands each claimed partition to its own goroutine (sarama ConsumeClaim), so a
message being retried holds back only its partition. KafkaConsumer is not thread-safe, so the
consumer thread fetches and commits, and these workers only deliver; finished offsets flow back
through `take_done()`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

Handler = Callable[[ConsumerRecord], bool]  # False: interrupted by shutdown, do not commit


class PartitionWorkers:
    def __init__(self, handle: Handler, stop: threading.Event) -> None:
        self._handle = handle
        self._stop = stop
        self._cond = threading.Condition()
        self._queues: dict[TopicPartition, deque[ConsumerRecord]] = {}
        self._busy: set[TopicPartition] = set()
        self._done: dict[TopicPartition, int] = {}
        self._threads: dict[TopicPartition, threading.Thread] = {}

    def submit(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        with self._cond:
            if tp not in self._queues:
                self._queues[tp] = deque()
                thread = threading.Thread(target=self._work, args=(tp,), daemon=True,
                                          name=f"deliver-{tp.topic}-{tp.partition}")
                self._threads[tp] = thread
                thread.start()
            self._queues[tp].extend(records)
            self._cond.notify_all()

    def backlog(self, tp: TopicPartition) -> int:
        with self._cond:
            return len(self._queues.get(tp, ())) + (1 if tp in self._busy else 0)

    def take_done(self) -> dict[TopicPartition, int]:
        """Next offsets to commit per partition (records handled in order up to there)."""
        with self._cond:
            done, self._done = self._done, {}
            return done

    def _work(self, tp: TopicPartition) -> None:
        queue = self._queues[tp]
        while True:
            with self._cond:
                while not queue and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                record = queue.popleft()
                self._busy.add(tp)
            handled = self._handle(record)
            with self._cond:
                self._busy.discard(tp)
                if not handled:  # shutdown interrupted it: leave it and the rest uncommitted
                    queue.clear()
                    return
                self._done[tp] = record.offset + 1
                self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        """After stop is set: wait for records being delivered to finish (bounded)."""
        self.wake()
        for thread in list(self._threads.values()):
            thread.join(timeout)
