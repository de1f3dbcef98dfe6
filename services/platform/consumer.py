"""Receiving events from the Dapr sidecar: one place for the subscription contract.

Every consumer (worker, notification, websocket, audit) gets its events the same way: daprd
POSTs each Kafka message to the route named in the declarative Subscription, as a CloudEvent,
and reads the answer as Dapr's pub/sub contract defines it (HTTP 200 with a JSON status):

- ``SUCCESS``: handled (or deliberately ignored); the offset moves on.
- ``RETRY``: a transient failure (sidecar, state store or backend unreachable, a bug we hope
  a redeploy fixes); daprd retries per the Resiliency policy and, once the retries run out,
  sends the message to the Subscription's ``deadLetterTopic``.
- ``DROP``: the message can never succeed (not a CloudEvent, unknown type, data off the
  contract, or a handler that says so). Since Dapr 1.13 (dapr/dapr#7097) daprd forwards a
  dropped message to the ``deadLetterTopic`` when one is configured, so a poison message lands
  in the DLQ at once instead of burning every retry first, and can be inspected and replayed
  from todo-console. (A 404 would drop it without the DLQ; a 5xx would retry it pointlessly.)

While a handler runs, the event's own correlation id and traceparent are bound, so every log
line and every Dapr call it makes carries the id of the request that caused the event.

A Subscription with ``bulkSubscribe`` enabled gets the same route called with a batch instead:
daprd's bulk envelope (``type: com.dapr.event.sent.bulk``, ``entries`` each with an ``entryId``
and its CloudEvent as ``event``), answered with one status per entry (``{"statuses": [{"entryId",
"status"}]}``). A topic may register a batch handler that takes the whole batch at once (the audit
writes it in one transaction); otherwise the topic's handler runs once per entry: the entries of
one subject (the task: the events' partition key) in order, different subjects concurrently. Kafka
orders a partition only per key, so nothing is lost, and a burst on one partition is worked off
by as many handlings at a time as the batch has tasks rather than one after the other (the worker:
each completion waits on an invocation of the backend).
Docs: https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-bulk/
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from services.platform import correlation, metrics
from services.platform.dapr_gateway import DaprCallError, DaprGateway, DaprUnavailable
from services.platform.events import CloudEvent, EventError, parse_event

log = logging.getLogger(__name__)


class Status(StrEnum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


BULK_EVENT_TYPE = "com.dapr.event.sent.bulk"


class Answer(BaseModel):
    """The body daprd reads to decide what happens to the message."""

    status: Status


class EntryStatus(BaseModel):
    entryId: str  # daprd's field name
    status: Status


class BulkAnswer(BaseModel):
    """The body daprd reads to decide what happens to each entry of a bulk delivery."""

    statuses: list[EntryStatus]


class DropEvent(Exception):
    """Raised by a handler: this event can never be handled; send it to the dead-letter topic."""


class RetryEvent(Exception):
    """Raised by a handler: handling failed for a reason that may pass; deliver it again."""


@dataclass(frozen=True)
class Delivery:
    """One event as a handler sees it: the envelope, its typed data, where it came from."""

    topic: str
    event: CloudEvent
    data: BaseModel
    request: Request  # what the service's typed providers (its api/deps.py) read the app's state from


Handler = Callable[[Delivery], Awaitable[None]]
BatchHandler = Callable[[Sequence[Delivery]], Awaitable[None]]  # all of the batch, or raise


async def deliver(service: str, topic: str, body: bytes | dict[str, Any], request: Request,
                  handler: Handler) -> Status:
    """Parse, bind the event's correlation, run the handler, count and log the outcome."""
    delivery = _parse(service, topic, body, request)
    if delivery is None:
        return Status.DROP
    return await _handle(service, [delivery], lambda batch: handler(batch[0]))


async def deliver_bulk(service: str, topic: str, envelope: dict[str, Any], request: Request,
                       handler: Handler, batch_handler: BatchHandler | None = None) -> BulkAnswer:
    """One status per entry of daprd's bulk envelope; entries off the contract are dropped alone."""
    entries = envelope.get("entries")
    statuses: dict[str, Status] = {}
    ready: list[tuple[str, Delivery]] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not entry.get("entryId"):
            log.warning("bulk entry without an entryId ignored", extra={"topic": topic})
            continue
        entry_id = str(entry["entryId"])
        statuses[entry_id] = Status.DROP
        delivery = _parse(service, topic, entry.get("event"), request)
        if delivery is not None:
            ready.append((entry_id, delivery))
    if batch_handler is not None and ready:
        status = await _handle(service, [d for _, d in ready], batch_handler)
        statuses.update({entry_id: status for entry_id, _ in ready})
    else:
        statuses.update(await _each_by_subject(service, ready, handler))
    return BulkAnswer(statuses=[EntryStatus(entryId=e, status=s) for e, s in statuses.items()])


async def _each_by_subject(service: str, ready: Sequence[tuple[str, Delivery]], handler: Handler) -> dict[str, Status]:
    """Each entry's status: one subject's entries in order, different subjects concurrently.

    After an entry of a subject asks for a retry, that subject's later entries are not handled and
    ask for a retry too: applied before it they could be overtaken by it on redelivery.
    """
    chains: dict[str | None, list[tuple[str, Delivery]]] = {}
    for entry_id, delivery in ready:
        chains.setdefault(delivery.event.subject, []).append((entry_id, delivery))
    statuses: dict[str, Status] = {}

    async def in_order(chain: list[tuple[str, Delivery]]) -> None:
        held = False
        for entry_id, delivery in chain:
            if held:
                statuses[entry_id] = Status.RETRY
                continue
            statuses[entry_id] = await _handle(service, [delivery], lambda batch: handler(batch[0]))
            held = statuses[entry_id] is Status.RETRY

    await asyncio.gather(*(in_order(chain) for chain in chains.values()))
    return statuses


def _parse(service: str, topic: str, body: Any, request: Request) -> Delivery | None:
    """The delivery for one envelope, or None (counted and logged) when it is off the contract."""
    try:
        if not isinstance(body, bytes | str | dict):
            raise EventError(f"not a CloudEvent object: {type(body).__name__}")
        event, data = parse_event(body)
    except EventError as exc:
        metrics.EVENTS_FAILED.labels(service, topic, "parse").inc()
        log.warning("event dropped: off the contract", extra={"topic": topic, "error": str(exc)[:1000]})
        return None
    return Delivery(topic, event, data, request)


def _fields(delivery: Delivery) -> dict[str, Any]:
    event = delivery.event
    return {"topic": delivery.topic, "event_id": event.id, "event_type": event.type, "subject": event.subject}


def _log_each(deliveries: Sequence[Delivery], emit: Callable[[dict[str, Any]], None]) -> None:
    """Log once per event, inside that event's correlation."""
    for delivery in deliveries:
        token = correlation.bind(correlation.from_headers(delivery.event.correlationid, delivery.event.traceparent))
        try:
            emit(_fields(delivery))
        finally:
            correlation.reset(token)


async def _handle(service: str, deliveries: Sequence[Delivery], handler: BatchHandler) -> Status:
    """Run the handler and map its outcome to Dapr's answer for every delivery it was given.

    The first event's correlation is bound while the handler runs: for a single delivery that is
    the event's own; a batch handler binds each event's itself where it matters.
    """
    topic, count = deliveries[0].topic, len(deliveries)
    first = deliveries[0].event
    token = correlation.bind(correlation.from_headers(first.correlationid, first.traceparent))
    try:
        await handler(deliveries)
    except DropEvent as exc:
        metrics.EVENTS_FAILED.labels(service, topic, "drop").inc(count)
        dropped = str(exc)
        _log_each(deliveries, lambda f: log.warning("event dropped", extra={**f, "error": dropped}))
        return Status.DROP
    except (RetryEvent, DaprUnavailable, DaprCallError) as exc:
        metrics.EVENTS_FAILED.labels(service, topic, "retry").inc(count)
        failed = str(exc)
        _log_each(deliveries, lambda f: log.warning("event failed; asking for redelivery",
                                                    extra={**f, "error": failed}))
        return Status.RETRY
    except Exception:
        metrics.EVENTS_FAILED.labels(service, topic, "error").inc(count)
        log.exception("event handler error; asking for redelivery",
                      extra={**_fields(deliveries[0]), "batch_size": count})
        return Status.RETRY
    finally:
        correlation.reset(token)
    metrics.EVENTS_CONSUMED.labels(service, topic).inc(count)
    _log_each(deliveries, lambda f: log.info("event handled", extra=f))
    return Status.SUCCESS


def subscription_router(service: str, handlers: dict[str, Handler], *, prefix: str = "/events",
                        batch_handlers: dict[str, BatchHandler] | None = None) -> APIRouter:
    """POST <prefix>/<topic> for each topic, as the Subscriptions' `routes.default` name them."""
    router = APIRouter(prefix=prefix, tags=["events"])
    for topic, handler in handlers.items():
        batch = (batch_handlers or {}).get(topic)
        router.add_api_route(
            f"/{topic}", _endpoint(service, topic, handler, batch), methods=["POST"],
            response_model=Answer | BulkAnswer, name=f"consume_{topic.replace('-', '_')}",
            summary=f"Dapr delivers `{topic}` events here, one by one or in bulk",
        )
    return router


def _endpoint(service: str, topic: str, handler: Handler,
              batch: BatchHandler | None) -> Callable[[Request], Awaitable[Answer | BulkAnswer]]:
    async def consume(request: Request) -> Answer | BulkAnswer:
        body = await request.body()
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if isinstance(envelope, dict) and envelope.get("type") == BULK_EVENT_TYPE:
            return await deliver_bulk(service, topic, envelope, request, handler, batch)
        return Answer(status=await deliver(service, topic, envelope if isinstance(envelope, dict) else body,
                                           request, handler))

    return consume


async def write_once(gateway: DaprGateway, key: str, value: str) -> bool:
    """Save `key` only if it does not exist yet: True if this call wrote it, False if it was there.

    The idempotency marker every consumer needs under at-least-once delivery and several
    replicas. A refused first-write looks different per state store (ABORTED for an etag
    mismatch; state.postgresql without an etag answers INTERNAL "no item was updated"), so a
    refused write is confirmed by reading the key back; any other failure is raised.
    """
    try:
        await gateway.save_state(key, value, first_write=True)
        return True
    except DaprCallError:
        if await gateway.get_state(key) is not None:
            return False
        raise

