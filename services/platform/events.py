"""The event contract: CloudEvents 1.0 envelopes with versioned types and typed data.

Every event the system publishes is built here and every consumer parses it here, so a
producer and its consumers cannot drift apart. Rules:

- `type` is `todo.<entity>.<action>.v<N>`; a breaking change to a data model is a new type
  (`...v2`) published alongside the old one until every consumer moved.
- `id` is unique per event and is the consumers' idempotency key: delivery is at least
  once, so a consumer that sees an id twice must not act twice.
- `subject` is the task id, and the partition key when published, so all events of one
  task stay in order on one partition.
- `correlationid` and `traceparent` (CloudEvents extensions) carry the request that caused it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.platform import correlation

TOPIC_TASK_EVENTS = "task-events"
TOPIC_REMINDERS = "reminders"
TOPIC_TASK_UPDATES = "task-updates"
TOPICS = (TOPIC_TASK_EVENTS, TOPIC_REMINDERS, TOPIC_TASK_UPDATES)

TASK_CREATED = "todo.task.created.v1"
TASK_UPDATED = "todo.task.updated.v1"
TASK_COMPLETED = "todo.task.completed.v1"
TASK_DELETED = "todo.task.deleted.v1"
REMINDER_SCHEDULED = "todo.reminder.scheduled.v1"
REMINDER_CANCELLED = "todo.reminder.cancelled.v1"

TaskAction = Literal["created", "updated", "completed", "deleted"]
Priority = Literal["low", "medium", "high", "urgent"]


class EventError(ValueError):
    """An envelope or its data does not match the contract; never retried, sent to the DLQ."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recurrence(_Model):
    """Recurrence metadata: enough for the worker to compute the next instance alone."""

    rule: str = Field(description="RFC 5545 RRULE subset, canonical form")
    timezone: str = Field(description="IANA zone the rule is evaluated in")
    series_id: str = Field(description="Links every instance of one recurring task")
    series_start: datetime = Field(description="Due date of the first instance")
    occurrence_index: int = Field(ge=1, description="1 for the first instance of the series")


class TaskSnapshot(_Model):
    """The task as committed by the change that produced the event."""

    id: str
    owner_id: str
    title: str
    description: str
    priority: Priority
    tags: list[str]
    status: Literal["pending", "completed"]
    due_at: datetime | None
    reminder_offset_minutes: int | None
    recurrence: Recurrence | None
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class TaskEventData(_Model):
    """Data of every `todo.task.*.v1` event (on task-events and task-updates)."""

    timestamp: datetime
    user_id: str
    action: TaskAction
    entity_type: Literal["task"] = "task"
    entity_id: str
    task: TaskSnapshot
    changed_fields: list[str] = Field(default_factory=list)


class ReminderScheduledData(_Model):
    """A reminder to fire at `remind_at` (due date minus the reminder offset)."""

    timestamp: datetime
    user_id: str
    action: Literal["reminder_scheduled"] = "reminder_scheduled"
    entity_type: Literal["task"] = "task"
    entity_id: str
    title: str
    due_at: datetime
    remind_at: datetime
    task_version: int


class ReminderCancelledData(_Model):
    """The task's reminder must not fire (task deleted, completed, or reminder removed)."""

    timestamp: datetime
    user_id: str
    action: Literal["reminder_cancelled"] = "reminder_cancelled"
    entity_type: Literal["task"] = "task"
    entity_id: str
    reason: Literal["deleted", "completed", "reminder_removed"]
    task_version: int


DATA_MODELS: dict[str, type[_Model]] = {
    TASK_CREATED: TaskEventData,
    TASK_UPDATED: TaskEventData,
    TASK_COMPLETED: TaskEventData,
    TASK_DELETED: TaskEventData,
    REMINDER_SCHEDULED: ReminderScheduledData,
    REMINDER_CANCELLED: ReminderCancelledData,
}

TASK_ACTION_TYPES: dict[str, str] = {
    "created": TASK_CREATED,
    "updated": TASK_UPDATED,
    "completed": TASK_COMPLETED,
    "deleted": TASK_DELETED,
}


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode envelope as we publish it.

    Unknown attributes are allowed on input: daprd adds its own (topic, pubsubname,
    traceid, ...) when it delivers, and consumers must tolerate them.
    """

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    data: dict[str, Any]
    correlationid: str | None = None
    traceparent: str | None = None

    def typed_data(self) -> _Model:
        """The data parsed with the model registered for this event's type."""
        model = DATA_MODELS.get(self.type)
        if model is None:
            raise EventError(f"unknown event type {self.type!r}")
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise EventError(f"{self.type} data invalid: {exc.errors(include_url=False)}") from exc


def build_event(*, source: str, event_type: str, subject: str, data: _Model) -> CloudEvent:
    """An envelope for `data`, stamped with the current correlation id and traceparent."""
    if DATA_MODELS.get(event_type) is not type(data):
        raise EventError(f"{event_type} does not carry {type(data).__name__}")
    ctx = correlation.current()
    return CloudEvent(
        source=source,
        type=event_type,
        subject=subject,
        data=data.model_dump(mode="json"),
        correlationid=ctx.correlation_id,
        traceparent=ctx.traceparent,
    )


def parse_event(body: bytes | str | dict[str, Any]) -> tuple[CloudEvent, _Model]:
    """Parse a delivered envelope and its data; EventError for anything off-contract."""
    try:
        event = (
            CloudEvent.model_validate(body)
            if isinstance(body, dict)
            else CloudEvent.model_validate_json(body)
        )
    except ValidationError as exc:
        raise EventError(f"not a valid CloudEvent: {exc.errors(include_url=False)}") from exc
    return event, event.typed_data()
