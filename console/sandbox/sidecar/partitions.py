"""One worker thread per Kafka partition: each partition in order, partitions in parallel.

The Kafka component hands each claimed partition to its own goroutine (sarama ConsumeClaim), so a
message being retried holds back only its partition. KafkaConsumer is not thread-safe, so the
consumer thread fetches and commits, and these workers only deliver; finished offsets flow back
through `take_done()`.

A topic can instead be delivered in batches (bulk subscribe): the worker takes up to `max_count`
queued records of its partition, waiting at most `max_wait` seconds after the oldest of them was
queued for the batch to fill (the Kafka component's per-claim batching in consumer.go). A batch is
reported done as a whole, so its offsets are committed only once every record in it is settled.

The workers share one lock but each waits on its own condition: with one condition for all, every
record submitted (and every record finished) woke every partition's worker, a few wasted thread
switches per message.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from console.sandbox.sidecar.records import Partition, Record

Handler = Callable[[Record], bool]  # False: interrupted by shutdown, do not commit
BatchHandler = Callable[[list[Record]], bool]  # same contract, for a whole batch


@dataclass(frozen=True)
class BatchLimits:
    max_count: int
    max_wait: float  # seconds


BatchPolicy = Callable[[str], BatchLimits | None]  # topic -> limits; None: one record at a time


def _no_batches(topic: str) -> BatchLimits | None:
    return None


class PartitionWorkers:
    def __init__(self, handle: Handler, stop: threading.Event, handle_batch: BatchHandler | None = None,
                 batching: BatchPolicy = _no_batches) -> None:
        self._handle = handle
        self._handle_batch = handle_batch
        self._batching = batching
        self._stop = stop
        self._lock = threading.Lock()
        self._ready: dict[Partition, threading.Condition] = {}  # per partition, all on self._lock
        # each record with the monotonic time it was queued (how long a partial batch has waited)
        self._queues: dict[Partition, deque[tuple[Record, float]]] = {}
        self._busy: dict[Partition, int] = {}
        self._done: dict[Partition, int] = {}
        self._threads: dict[Partition, threading.Thread] = {}

    def submit(self, tp: Partition, records: list[Record]) -> None:
        with self._lock:
            if tp not in self._queues:
                self._queues[tp] = deque()
                self._ready[tp] = threading.Condition(self._lock)
                thread = threading.Thread(target=self._work, args=(tp,), daemon=True,
                                          name=f"deliver-{tp.topic}-{tp.partition}")
                self._threads[tp] = thread
                thread.start()
            now = time.monotonic()
            self._queues[tp].extend((record, now) for record in records)
            self._ready[tp].notify()

    def backlog(self, tp: Partition) -> int:
        with self._lock:
            return len(self._queues.get(tp, ())) + self._busy.get(tp, 0)

    def take_done(self) -> dict[Partition, int]:
        """Next offsets to commit per partition (records handled in order up to there)."""
        with self._lock:
            done, self._done = self._done, {}
            return done

    def _work(self, tp: Partition) -> None:
        queue, ready = self._queues[tp], self._ready[tp]
        limits = self._batching(tp.topic) if self._handle_batch is not None else None
        deliver: BatchHandler = self._handle_batch if limits is not None and self._handle_batch is not None \
            else self._one
        while True:
            with self._lock:
                records = self._take(queue, ready, limits)
                if records is None:
                    return
                self._busy[tp] = len(records)
            handled = deliver(records)
            with self._lock:
                self._busy.pop(tp, None)
                if not handled:  # shutdown interrupted it: leave it and the rest uncommitted
                    queue.clear()
                    return
                self._done[tp] = records[-1].offset + 1

    def _one(self, records: list[Record]) -> bool:
        return self._handle(records[0])

    def _take(self, queue: deque[tuple[Record, float]], ready: threading.Condition,
              limits: BatchLimits | None) -> list[Record] | None:
        """Under the lock: the next record, or batch; None once stopping.

        A batch leaves as soon as it is full; a partial one once its oldest record has waited
        `max_wait` (no extra wait when a full batch is already queued).
        """
        while not queue and not self._stop.is_set():
            ready.wait()
        if limits is not None:
            deadline = queue[0][1] + limits.max_wait if queue else 0.0
            while len(queue) < limits.max_count and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                ready.wait(remaining)
        if self._stop.is_set():
            return None
        count = 1 if limits is None else min(limits.max_count, len(queue))
        return [queue.popleft()[0] for _ in range(count)]

    def wake(self) -> None:
        with self._lock:
            for ready in self._ready.values():
                ready.notify_all()

    def join(self, timeout: float) -> None:
        """After stop is set: wait for records being delivered to finish (bounded)."""
        self.wake()
        for thread in list(self._threads.values()):
            thread.join(timeout)
