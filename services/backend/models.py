"""SQLAlchemy 2.0 typed models: tasks, the outbox, idempotency records and the relay lease."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which drops the offset) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use timezone-aware UTC")

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:

        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_owner_status_due", "owner_id", "status", "due_at"),
        Index("ix_tasks_owner_created", "owner_id", "created_at"),
        UniqueConstraint("series_id", "occurrence_index", name="uq_tasks_series_occurrence"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(10), default="medium")
    # JSONB on PostgreSQL, so a tag filter is a containment test (`tags @> '["x"]'`) in the database.
    tags: Mapped[list[str]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"), default=list)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    reminder_offset_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recurrence_rule: Mapped[str | None] = mapped_column(String(500), nullable=True)
    series_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    series_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    occurrence_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # Optimistic concurrency: every UPDATE checks and bumps `version`, so two writers that read
    # the same version cannot both succeed (the loser gets StaleDataError -> 409/412).
    __mapper_args__: Mapping[str, Any] = {"version_id_col": version}  # SQLAlchemy's own type for it


class OutboxEvent(Base):
    """An event committed with the change that caused it, waiting for the relay to publish it.

    `id` is the publish order: the relay sends rows strictly in id order, which keeps every
    task's events in order (they share a partition key downstream too). `payload` is the
    CloudEvent serialised once, when it is written; the relay sends it as it is. The event's
    correlation id and traceparent sit beside it, so the relay's Dapr call and log lines carry
    them without parsing the payload.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_pending", "published_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    topic: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(100))
    aggregate_id: Mapped[str] = mapped_column(String(36))
    payload: Mapped[str] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class IdempotencyRecord(Base):
    """The answer given to a POST with an Idempotency-Key, replayed when the key comes again."""

    __tablename__ = "idempotency_keys"

    owner_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True)
    status_code: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RelayLease(Base):
    """Which backend replica may run the outbox relay: one at a time keeps publish order."""

    __tablename__ = "outbox_relay_lease"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
