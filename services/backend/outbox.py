"""The transactional outbox: events are rows written in the same transaction as the change.

`enqueue_*` run inside the caller's transaction, so a task change and its events commit
or roll back together. `OutboxRelay` then publishes committed rows through Dapr and marks
them sent: each task's events in id order, different tasks' events concurrently (one
publish is a full round trip to Kafka with acks=all, so one at a time caps a burst at
about 75 events/s). If the sidecar or Kafka is down the API keeps answering, rows
wait, and the relay retries with exponential backoff; when publishing works again they go
out in the order they were written. Only the replica holding the relay lease publishes,
so adding replicas never reorders or doubles events in normal operation. A crash between
publish and mark can re-send one batch: consumers dedupe by CloudEvent id.

An event is serialised once, when its row is written, and published as those bytes. While the
relay publishes an event, that event's correlation id and traceparent are bound: its Dapr call
carries them, and so does any line logged about it ("outbox publish failing" names the event
that failed, "outbox publishing resumed" the first one that went out again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.backend.models import OutboxEvent, RelayLease, Task
from services.backend.reminders import reminder_event
from services.platform import correlation, events, metrics
from services.platform.dapr_gateway import DaprCallError, DaprGateway, DaprUnavailable
from services.platform.database import write_transaction
from services.platform.events import CloudEvent

log = logging.getLogger(__name__)

LEASE_NAME = "outbox-relay"
_WRITTEN = "outbox_written"
# outbox_pending_events is counted (a COUNT over the pending rows) at most this often: per batch, it
# was a query per commit under load for a gauge Prometheus reads every few seconds.
GAUGE_EVERY_S = 1.0
_INSERT = insert(OutboxEvent.metadata.tables[OutboxEvent.__tablename__])


def snapshot(task: Task) -> events.TaskSnapshot:
    recurrence = None
    if task.recurrence_rule and task.series_id and task.series_start and task.occurrence_index:
        recurrence = events.Recurrence(
            rule=task.recurrence_rule, timezone=task.timezone, series_id=task.series_id,
            series_start=task.series_start, occurrence_index=task.occurrence_index,
        )
    return events.TaskSnapshot(
        id=task.id, owner_id=task.owner_id, title=task.title, description=task.description,
        priority=task.priority, tags=list(task.tags), status=task.status, due_at=task.due_at,  # type: ignore[arg-type]
        reminder_offset_minutes=task.reminder_offset_minutes, recurrence=recurrence,
        version=task.version, created_at=task.created_at, updated_at=task.updated_at,
        completed_at=task.completed_at,
    )


def _row(topic: str, event: CloudEvent, now: datetime) -> dict[str, Any]:
    return {"event_id": event.id, "topic": topic, "event_type": event.type, "aggregate_id": str(event.subject),
            "payload": event.model_dump_json(exclude_none=True), "correlation_id": event.correlationid,
            "traceparent": event.traceparent, "created_at": now}


def enqueue_task_change(
    session: Session, *, task: Task, action: events.TaskAction, changed_fields: list[str],
    reminder_was: datetime | None,
) -> None:
    """Write every event one task change produces: task-events, task-updates and, when the task's
    reminder changed from `reminder_was` (see services.backend.reminders), reminders.

    One INSERT for all of them, on the table rather than through the ORM (its unit of work, or its
    bulk INSERT, which still inspects every row against the mapper): nothing reads the rows back in
    this transaction, and the ORM's bookkeeping was most of the cost of writing them."""
    now = datetime.now(UTC)
    data = events.TaskEventData(
        timestamp=now, user_id=task.owner_id, action=action, entity_id=task.id,
        task=snapshot(task), changed_fields=changed_fields,
    )
    event_type = events.TASK_ACTION_TYPES[action]
    rows = [_row(topic, events.build_event(source="backend", event_type=event_type, subject=task.id, data=data), now)
            for topic in (events.TOPIC_TASK_EVENTS, events.TOPIC_TASK_UPDATES)]
    reminder = reminder_event(task, action=action, was=reminder_was, now=now)
    if reminder is not None:
        rows.append(_row(events.TOPIC_REMINDERS, reminder, now))
    session.execute(_INSERT, rows)
    session.info[_WRITTEN] = True  # tells the relay, after the commit, that there is work


def pending_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None))) or 0)


def oldest_pending_at(session: Session) -> datetime | None:
    """Commit time of the oldest event still waiting (the lowest pending id: ix_outbox_pending serves it)."""
    return session.scalar(select(OutboxEvent.created_at).where(OutboxEvent.published_at.is_(None))
                          .order_by(OutboxEvent.id).limit(1))


@dataclass(frozen=True)
class _Pending:
    """An outbox row waiting to be published, as the relay reads it."""

    row_id: int
    event_id: str
    topic: str
    task_id: str
    payload: str
    correlation_id: str | None
    traceparent: str | None

    def trace(self) -> correlation.TraceContext:
        """The context of the request that wrote the event (rows written before migration 0002 have
        none recorded: they get a fresh one)."""
        return correlation.from_headers(self.correlation_id, self.traceparent)


class OutboxRelay:
    """Publishes committed outbox rows in order; one instance per backend process."""

    def __init__(
        self, sessions: sessionmaker[Session], gateway: DaprGateway, *, service: str = "backend",
        poll_interval_s: float = 1.0, batch_size: int = 100, max_backoff_s: float = 10.0,
        lease_ttl_s: float = 15.0, concurrency: int = 16, read_sessions: sessionmaker[Session] | None = None,
    ) -> None:
        self.sessions = sessions
        # Finding pending rows and counting them only read: Database.read_sessions, no transaction on PostgreSQL.
        self.read_sessions = read_sessions or sessions
        self.gateway = gateway
        self.service = service
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.max_backoff_s = max_backoff_s
        self.lease_ttl = timedelta(seconds=lease_ttl_s)
        self.holder = f"{socket.gethostname()}-{os.getpid()}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._renewed_at = float("-inf")  # monotonic time of the last successful take or renewal
        self._failing = False  # publishing failed and has not succeeded since: warned once
        self._counted_at = float("-inf")  # monotonic time outbox_pending_events was last counted
        self._known_empty = False  # the last batch found nothing to publish and no commit wrote any since
        self._loop: asyncio.AbstractEventLoop | None = None
        self._oldest_pending: float | None = None  # Unix time; the age gauge reads it when scraped
        metrics.OUTBOX_OLDEST_AGE.labels(service).set_function(self._oldest_pending_age)

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Publish right after any commit that wrote outbox rows, rather than at the next poll."""
        sa_event.listen(sessions, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_WRITTEN, False):
            self._known_empty = False
            self.notify()

    def notify(self) -> None:
        # Commits happen in worker threads; asyncio.Event is not thread-safe.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        self._stopping = True
        self.notify()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        gauges = asyncio.create_task(self._refresh_gauges())
        try:
            await self._relay()
        finally:
            gauges.cancel()

    async def _refresh_gauges(self) -> None:
        """The backlog gauges, apart from publishing: a publish that hangs (a frozen broker) must not
        freeze the numbers that show it. Skipped while the outbox is known to be empty (the relay's
        last batch found nothing and nothing was committed since), so an idle backend does not count
        an empty outbox every second."""
        while not self._stopping:
            await asyncio.sleep(GAUGE_EVERY_S)
            if self._known_empty:
                continue
            try:
                await asyncio.to_thread(self._update_gauge)
            except Exception:
                log.debug("outbox gauges not refreshed", exc_info=True)

    async def _relay(self) -> None:
        backoff = 0.0
        while not self._stopping:
            # Cleared before the batch, not before the sleep: a commit made while this batch is
            # being published must wake the next iteration at once.
            self._wake.clear()
            try:
                if await self._lease_held():
                    published = await self.publish_pending()
                    backoff = 0.0
                    if published == self.batch_size:
                        continue  # more are waiting: no sleep between full batches
            except (DaprUnavailable, DaprCallError):
                # Logged where it failed, in the failing event's correlation.
                backoff = min(self.max_backoff_s, max(0.2, backoff * 2))
            except Exception:
                backoff = min(self.max_backoff_s, max(0.2, backoff * 2))
                log.exception("outbox relay error", extra={"retry_in_s": backoff})
            await self._sleep(backoff or self.poll_interval_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def publish_pending(self) -> int:
        """Publish one batch: each task's events strictly in order, different tasks concurrently.

        A failure stops only its own task's later events (nothing may overtake it); the others
        go on. Everything published is then marked sent in one transaction: one write per batch
        rather than one per event, which on SQLite queued behind (and held up) the API's writes.
        Raises the first failure once the batch is marked, so the relay backs off.
        """
        rows = await asyncio.to_thread(self._load_batch)
        if not rows:
            self._gauges_empty()
            return 0
        self._known_empty = False  # a commit may have come between that query and the flag
        per_task: dict[str, list[_Pending]] = {}
        for row in rows:
            per_task.setdefault(row.task_id, []).append(row)
        slots = asyncio.Semaphore(self.concurrency)
        sent: list[int] = []
        outcomes = await asyncio.gather(*(self._publish_in_order(rows, slots, sent) for rows in per_task.values()),
                                        return_exceptions=True)
        if sent:
            await asyncio.to_thread(self._mark_sent, sent)
        if time.monotonic() - self._counted_at >= GAUGE_EVERY_S:
            await asyncio.to_thread(self._update_gauge)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]
        return len(sent)

    async def _publish_in_order(self, rows: list[_Pending], slots: asyncio.Semaphore, sent: list[int]) -> None:
        """Publish one task's events in order, appending each published row id to `sent`.

        Runs as its own asyncio task (gather), so the correlation bound for each event stays here.
        """
        for row in rows:
            # A slow batch must not outlive the lease, or a second replica would publish too.
            if not await self._lease_held():
                return
            correlation.bind(row.trace())
            try:
                async with slots:
                    await self.gateway.publish(row.topic, row.payload, partition_key=row.task_id)
            except (DaprUnavailable, DaprCallError) as exc:
                metrics.EVENTS_FAILED.labels(self.service, row.topic, "publish").inc()
                await asyncio.to_thread(self._record_failure, row.row_id, str(exc))
                # One warning when publishing starts failing, not one per retry.
                (log.debug if self._failing else log.warning)(
                    "outbox publish failing; events wait in the outbox",
                    extra={"event_id": row.event_id, "topic": row.topic, "error": str(exc)})
                self._failing = True
                raise
            if self._failing:
                self._failing = False
                log.info("outbox publishing resumed", extra={"event_id": row.event_id, "topic": row.topic})
            log.debug("event published", extra={"event_id": row.event_id, "topic": row.topic})
            sent.append(row.row_id)

    def _load_batch(self) -> list[_Pending]:
        with self.read_sessions() as session:
            result = session.execute(
                select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.topic, OutboxEvent.aggregate_id,
                       OutboxEvent.payload, OutboxEvent.correlation_id, OutboxEvent.traceparent)
                .where(OutboxEvent.published_at.is_(None)).order_by(OutboxEvent.id).limit(self.batch_size)
            )
            return [_Pending(*row) for row in result]

    def _mark_sent(self, row_ids: list[int]) -> None:
        with write_transaction(self.sessions) as session:
            session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(row_ids)).values(
                published_at=datetime.now(UTC), attempts=OutboxEvent.attempts + 1, last_error=None))

    def _record_failure(self, row_id: int, error: str) -> None:
        with write_transaction(self.sessions) as session:
            session.execute(update(OutboxEvent).where(OutboxEvent.id == row_id).values(
                attempts=OutboxEvent.attempts + 1, last_error=error[:2000]))

    def _update_gauge(self) -> None:
        self._counted_at = time.monotonic()
        with self.read_sessions() as session:
            metrics.OUTBOX_PENDING.labels(self.service).set(pending_count(session))
            oldest = oldest_pending_at(session)
        self._oldest_pending = oldest.timestamp() if oldest is not None else None

    def _gauges_empty(self) -> None:
        """An empty batch has just shown the outbox empty: the gauges need no count."""
        self._known_empty = True
        metrics.OUTBOX_PENDING.labels(self.service).set(0)
        self._oldest_pending = None

    def _oldest_pending_age(self) -> float:
        return max(0.0, time.time() - self._oldest_pending) if self._oldest_pending is not None else 0.0

    async def _lease_held(self) -> bool:
        """True while this replica holds the lease, renewing it once a third of its TTL has passed.

        Renewing on every batch was a write transaction per commit under load, queued with the
        API's own writes; a lease renewed less than TTL/3 ago still has two thirds of it to run."""
        if time.monotonic() - self._renewed_at < self.lease_ttl.total_seconds() / 3:
            return True
        return await asyncio.to_thread(self._hold_lease)

    def _hold_lease(self) -> bool:
        """Take or renew the relay lease; False while another live replica holds it."""
        now = datetime.now(UTC)
        expires = now + self.lease_ttl
        with write_transaction(self.sessions) as session:
            # An UPDATE's result is a CursorResult (it has the rowcount); Session.execute is typed
            # as returning the base Result for any statement.
            result = cast(CursorResult[Any], session.execute(
                update(RelayLease)
                .where(RelayLease.name == LEASE_NAME)
                .where((RelayLease.holder == self.holder) | (RelayLease.expires_at < now))
                .values(holder=self.holder, expires_at=expires)
            ))
            if result.rowcount == 1:
                self._renewed_at = time.monotonic()
                return True
            if session.get(RelayLease, LEASE_NAME) is not None:
                return False
        try:
            with write_transaction(self.sessions) as session:
                session.add(RelayLease(name=LEASE_NAME, holder=self.holder, expires_at=expires))
        except IntegrityError:
            return False  # another replica created it first
        self._renewed_at = time.monotonic()
        return True
