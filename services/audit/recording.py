"""Turning any event of any topic into an audit row, and the subscription handler that writes it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from services.audit import store
from services.platform.consumer import Delivery
from services.platform.database import write_transaction
from services.platform.deps import get_database
from services.platform.events import CloudEvent

log = logging.getLogger(__name__)


def entry_values(topic: str, event: CloudEvent, data: Any) -> dict[str, Any]:
    """The row for one event: who did what to which entity, when, and the event itself."""
    return {
        "occurred_at": data.timestamp.astimezone(UTC), "recorded_at": datetime.now(UTC),
        "user_id": data.user_id, "action": data.action, "entity_type": data.entity_type,
        "entity_id": data.entity_id, "event_id": event.id, "topic": topic, "event_type": event.type,
        "source": event.source, "correlation_id": event.correlationid, "payload": event.data,
    }


def _write(sessions: sessionmaker[Session], rows: list[dict[str, Any]]) -> list[bool]:
    """Append the rows in one transaction; for each, False if it was already there."""
    with write_transaction(sessions) as session:
        return store.append_all(session, rows)


async def on_any_event(delivery: Delivery) -> None:
    """Every topic's handler: append the row; a duplicate is a success (it is already recorded)."""
    await on_event_batch([delivery])


async def on_event_batch(deliveries: Sequence[Delivery]) -> None:
    """A bulk delivery: every row in one transaction (one commit instead of one per event), all or
    none, so a failure leaves the whole batch to be redelivered and nothing half-recorded."""
    rows = [entry_values(d.topic, d.event, d.data) for d in deliveries]
    appended = await asyncio.to_thread(_write, get_database(deliveries[0].request).sessions, rows)
    for delivery, new in zip(deliveries, appended, strict=True):
        if not new:
            log.info("duplicate event already audited", extra={"event_id": delivery.event.id})
