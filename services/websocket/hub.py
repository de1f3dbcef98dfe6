"""Fan-out of task updates to connected clients, per user, with a bounded resume buffer.

Pure asyncio and in memory, one per process: `publish` is called by the task-updates
subscription, `subscribe` by each WebSocket connection. Both are synchronous (no await inside),
so under asyncio a client's replay and its registration happen in one step: an update published
meanwhile is either in the replay or in the queue, never lost and never twice.

Isolation: updates are keyed by the event's `data.user_id`; a connection receives only the
updates of the user its token names.

Resume: each user's last `buffer_size` updates are kept in a ring buffer. A client reconnecting
with the id of the last update it saw gets every later one; if that id has left the buffer
(or this replica never saw it: restart, another replica), `subscribe` says so and the client is
told to refetch (`{"type":"resync"}`). The same happens to a client too slow to drain its queue.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]


@dataclass(eq=False)
class Subscriber:
    """One connection's queue; `overflowed` tells it to resync instead of reading a gap."""

    user_id: str
    queue: asyncio.Queue[Message]
    overflowed: bool = False


@dataclass
class _UserLog:
    updates: deque[tuple[str, Message]]
    ids: set[str] = field(default_factory=set)


class Hub:
    def __init__(self, *, buffer_size: int = 200, max_users: int = 10_000, queue_size: int = 256) -> None:
        self.buffer_size = buffer_size
        self.max_users = max_users
        self.queue_size = queue_size
        self._logs: OrderedDict[str, _UserLog] = OrderedDict()
        self._subscribers: dict[str, set[Subscriber]] = {}

    def publish(self, user_id: str, event_id: str, message: Message) -> int:
        """Buffer and fan out one update; returns how many connections got it (0 for a redelivery)."""
        log = self._log(user_id)
        if event_id in log.ids:
            return 0
        if len(log.updates) == self.buffer_size:
            old_id, _ = log.updates.popleft()
            log.ids.discard(old_id)
        log.updates.append((event_id, message))
        log.ids.add(event_id)
        delivered = 0
        for subscriber in self._subscribers.get(user_id, ()):
            if subscriber.overflowed:
                continue
            try:
                subscriber.queue.put_nowait(message)
                delivered += 1
            except asyncio.QueueFull:
                subscriber.overflowed = True
        return delivered

    def subscribe(self, user_id: str, last_event_id: str | None = None) -> tuple[Subscriber, list[Message] | None]:
        """Register a connection; returns it with the updates after `last_event_id`.

        The list is empty without `last_event_id`, and None when that id is not in the buffer
        (the client must refetch its state).
        """
        backlog: list[Message] | None = []
        if last_event_id is not None:
            log = self._logs.get(user_id)
            if log is None or last_event_id not in log.ids:
                backlog = None
            else:
                ids = [event_id for event_id, _ in log.updates]
                backlog = [message for _, message in list(log.updates)[ids.index(last_event_id) + 1:]]
        subscriber = Subscriber(user_id, asyncio.Queue(self.queue_size))
        self._subscribers.setdefault(user_id, set()).add(subscriber)
        return subscriber, backlog

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(subscriber.user_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.user_id]

    def connections(self, user_id: str | None = None) -> int:
        if user_id is not None:
            return len(self._subscribers.get(user_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    def _log(self, user_id: str) -> _UserLog:
        log = self._logs.get(user_id)
        if log is None:
            log = self._logs[user_id] = _UserLog(deque())
            while len(self._logs) > self.max_users:
                self._logs.popitem(last=False)  # the least recently updated user resyncs on resume
        else:
            self._logs.move_to_end(user_id)
        return log
