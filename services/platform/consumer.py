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
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
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


class Answer(BaseModel):
    """The body daprd reads to decide what happens to the message."""

    status: Status


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
    request: Request

    @property
    def state(self) -> Any:
        """The app's state (settings, gateway, database...) set up by the service's lifespan."""
        return self.request.app.state


Handler = Callable[[Delivery], Awaitable[None]]


async def deliver(service: str, topic: str, body: bytes, request: Request, handler: Handler) -> Status:
    """Parse, bind the event's correlation, run the handler, count and log the outcome."""
    try:
        event, data = parse_event(body)
    except EventError as exc:
        metrics.EVENTS_FAILED.labels(service, topic, "parse").inc()
        log.warning("event dropped: off the contract", extra={"topic": topic, "error": str(exc)[:1000]})
        return Status.DROP
    token = correlation.bind(correlation.from_headers(event.correlationid, event.traceparent))
    try:
        return await _handle(service, Delivery(topic, event, data, request), handler)
    finally:
        correlation.reset(token)


async def _handle(service: str, delivery: Delivery, handler: Handler) -> Status:
    """Run the handler and map its outcome to Dapr's answer (inside the event's correlation)."""
    topic, event = delivery.topic, delivery.event
    fields = {"topic": topic, "event_id": event.id, "event_type": event.type, "subject": event.subject}
    try:
        await handler(delivery)
    except DropEvent as exc:
        metrics.EVENTS_FAILED.labels(service, topic, "drop").inc()
        log.warning("event dropped", extra={**fields, "error": str(exc)})
        return Status.DROP
    except (RetryEvent, DaprUnavailable, DaprCallError) as exc:
        metrics.EVENTS_FAILED.labels(service, topic, "retry").inc()
        log.warning("event failed; asking for redelivery", extra={**fields, "error": str(exc)})
        return Status.RETRY
    except Exception:
        metrics.EVENTS_FAILED.labels(service, topic, "error").inc()
        log.exception("event handler error; asking for redelivery", extra=fields)
        return Status.RETRY
    metrics.EVENTS_CONSUMED.labels(service, topic).inc()
    log.info("event handled", extra=fields)
    return Status.SUCCESS


def subscription_router(service: str, handlers: dict[str, Handler], *, prefix: str = "/events") -> APIRouter:
    """POST <prefix>/<topic> for each topic, as the Subscriptions' `routes.default` name them."""
    router = APIRouter(prefix=prefix, tags=["events"])
    for topic, handler in handlers.items():
        router.add_api_route(
            f"/{topic}", _endpoint(service, topic, handler), methods=["POST"], response_model=Answer,
            name=f"consume_{topic.replace('-', '_')}", summary=f"Dapr delivers `{topic}` events here",
        )
    return router


def _endpoint(service: str, topic: str, handler: Handler) -> Callable[[Request], Awaitable[Answer]]:
    async def consume(request: Request) -> Answer:
        return Answer(status=await deliver(service, topic, await request.body(), request, handler))

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

