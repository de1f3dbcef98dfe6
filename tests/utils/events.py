"""Factories for real CloudEvents of the contract (built with services.platform.events.build_event)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.platform import events
from services.platform.events import CloudEvent

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def snapshot(*, task_id: str | None = None, owner: str = "alice", due_at: datetime | None = T0,
             rule: str | None = None, tz: str = "UTC", series_start: datetime | None = None,
             occurrence_index: int = 1, status: str = "pending", version: int = 1,
             title: str = "Water plants", reminder_offset_minutes: int | None = None) -> events.TaskSnapshot:
    task_id = task_id or str(uuid.uuid4())
    recurrence = None
    if rule is not None:
        recurrence = events.Recurrence(rule=rule, timezone=tz, series_id=task_id,
                                       series_start=series_start or due_at or T0,
                                       occurrence_index=occurrence_index)
    return events.TaskSnapshot(
        id=task_id, owner_id=owner, title=title, description="", priority="medium", tags=["home"],
        status=status, due_at=due_at, reminder_offset_minutes=reminder_offset_minutes,  # type: ignore[arg-type]
        recurrence=recurrence, version=version, created_at=T0, updated_at=T0,
        completed_at=T0 if status == "completed" else None,
    )


def task_event(action: events.TaskAction, task: events.TaskSnapshot, *, when: datetime = T0) -> CloudEvent:
    data = events.TaskEventData(timestamp=when, user_id=task.owner_id, action=action, entity_id=task.id,
                                task=task, changed_fields=[])
    return events.build_event(source="backend", event_type=events.TASK_ACTION_TYPES[action],
                              subject=task.id, data=data)


def reminder_scheduled(*, task_id: str = "t-1", owner: str = "alice", due_at: datetime = T0,
                       offset_min: int = 15, version: int = 1, title: str = "Water plants") -> CloudEvent:
    data = events.ReminderScheduledData(
        timestamp=T0, user_id=owner, entity_id=task_id, title=title, due_at=due_at,
        remind_at=due_at - timedelta(minutes=offset_min), task_version=version)
    return events.build_event(source="backend", event_type=events.REMINDER_SCHEDULED, subject=task_id, data=data)


def reminder_cancelled(*, task_id: str = "t-1", owner: str = "alice", version: int = 2,
                       reason: str = "deleted") -> CloudEvent:
    data = events.ReminderCancelledData(timestamp=T0, user_id=owner, entity_id=task_id, reason=reason,  # type: ignore[arg-type]
                                        task_version=version)
    return events.build_event(source="backend", event_type=events.REMINDER_CANCELLED, subject=task_id, data=data)


def delivered(event: CloudEvent, topic: str) -> bytes:
    """The body daprd POSTs: our envelope plus the attributes daprd adds (FromCloudEvent)."""
    body = event.model_dump(mode="json", exclude_none=True)
    body.update(topic=topic, pubsubname="kafka-pubsub", traceid=event.traceparent, tracestate="")
    return CloudEvent.model_validate(body).model_dump_json(exclude_none=True).encode()
