"""Data access for the audit log: keyword-only functions shared by the routes and the tests."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Executable, Select, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.audit.models import AuditEntry

_INSERTS: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@functools.cache
def _append_statement(dialect: str) -> Executable:
    """INSERT ... ON CONFLICT (topic, event_id) DO NOTHING RETURNING (topic, event_id), built once per
    dialect, values bound per row.

    Built per row with the values in it (`insert(AuditEntry).values(**row)`), SQLAlchemy went through
    its ORM bulk-insert path and computed the statement's cache key over every value: two thirds of
    the audit service's CPU per event. On the Core table, with the rows as parameters, the compiled
    statement is reused, and with RETURNING SQLAlchemy sends a batch as one INSERT of many VALUES
    ("insertmanyvalues"): one round trip per batch, where a statement per row was one per event."""
    table = cast(Table, AuditEntry.__table__)
    return cast(Executable, _INSERTS[dialect](table).on_conflict_do_nothing(
        index_elements=[table.c.topic, table.c.event_id]).returning(table.c.topic, table.c.event_id))


def append_all(session: Session, rows: list[dict[str, Any]]) -> list[bool]:
    """Insert the entries; for each, False when (topic, event_id) was already there (a redelivery,
    or the same event twice in `rows`). RETURNING names only the rows inserted, in no set order."""
    if not rows:
        return []
    statement = _append_statement(session.get_bind().dialect.name)
    inserted = {(topic, event_id) for topic, event_id in session.execute(statement, rows)}
    appended = []
    for row in rows:
        key = (row["topic"], row["event_id"])
        appended.append(key in inserted)
        inserted.discard(key)  # a second copy in the same batch was not inserted
    return appended


@dataclass(frozen=True)
class Filters:
    user_id: str | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    event_type: str | None = None
    topic: str | None = None
    correlation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        for name in ("user_id", "action", "entity_type", "entity_id", "event_type", "topic", "correlation_id"):
            value = getattr(self, name)
            if value is not None:
                query = query.where(getattr(AuditEntry, name) == value)
        # Bound in UTC: SQLite keeps the stored wall time only, which is UTC.
        if self.since is not None:
            query = query.where(AuditEntry.occurred_at >= self.since.astimezone(UTC))
        if self.until is not None:
            query = query.where(AuditEntry.occurred_at < self.until.astimezone(UTC))
        return query


def search(session: Session, *, filters: Filters, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
    """One page, newest first (ties in insertion order, newest first), and the total that match."""
    total = session.scalar(filters.apply(select(func.count()).select_from(AuditEntry))) or 0
    rows = session.scalars(
        filters.apply(select(AuditEntry)).order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)
