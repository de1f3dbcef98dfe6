"""API models: what clients send and receive. Validation here is what turns bad input into 422s."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.platform.events import Priority
from services.platform.recurrence import RecurrenceError, format_rrule, parse_rrule, resolve_zone

MAX_REMINDER_OFFSET_MIN = 60 * 24 * 30


def _timestamp_text(value: object) -> object:
    # JSON has no date type: the document says a date-time string, and a number (which pydantic
    # would read as Unix seconds) is refused rather than guessed at.
    if value is not None and not isinstance(value, str | datetime):
        raise ValueError("must be a date-time string with an offset, e.g. 2026-12-01T09:00:00+01:00")
    return value


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a timezone offset, e.g. 2026-12-01T09:00:00+01:00")
    # Stored and returned in UTC; the task's `timezone` keeps the wall clock for recurrence.
    return None if value is None else value.astimezone(UTC)


def _stripped(value: str | None) -> str | None:
    # Stripped after the length checks, so a length the OpenAPI document allows is the length of what
    # the client sent (pydantic's str_strip_whitespace would strip first: 201 characters with a
    # trailing space would pass a documented maxLength of 200).
    return None if value is None else value.strip()


def _title(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _zone(value: str) -> str:
    value = value.strip()
    try:
        resolve_zone(value)
    except RecurrenceError as exc:
        raise ValueError(str(exc)) from None
    return value


def _rule(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return format_rrule(parse_rrule(value))
    except RecurrenceError as exc:
        raise ValueError(str(exc)) from exc


def _tags(value: list[str]) -> list[str]:
    cleaned = [tag.strip() for tag in value]
    if any(not tag or len(tag) > 50 for tag in cleaned):
        raise ValueError("each tag must be 1 to 50 characters")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError("tags must be unique")
    return cleaned


class _Input(BaseModel):
    """What a new task and a change share: no unknown fields, and each field checked the same way."""

    model_config = ConfigDict(extra="forbid")

    _due_text = field_validator("due_at", mode="before", check_fields=False)(_timestamp_text)
    _check_due = field_validator("due_at", check_fields=False)(_aware)
    _check_title = field_validator("title", check_fields=False)(_title)
    _strip = field_validator("description", check_fields=False)(_stripped)
    _check_zone = field_validator("timezone", check_fields=False)(_zone)
    _check_rule = field_validator("recurrence_rule", check_fields=False)(_rule)
    _check_tags = field_validator("tags", check_fields=False)(_tags)


class TaskCreate(_Input):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    priority: Priority = "medium"
    tags: list[str] = Field(default_factory=list, max_length=20)
    due_at: datetime | None = None
    timezone: str = "UTC"
    reminder_offset_minutes: int | None = Field(None, ge=0, le=MAX_REMINDER_OFFSET_MIN, strict=True)
    recurrence_rule: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _needs_due_date(self) -> TaskCreate:
        if self.due_at is None and self.recurrence_rule:
            raise ValueError("recurrence_rule needs due_at (the first occurrence)")
        if self.due_at is None and self.reminder_offset_minutes is not None:
            raise ValueError("reminder_offset_minutes needs due_at")
        return self


class TaskUpdate(_Input):
    """A partial update: only the fields sent change; send null to clear a nullable field."""

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    priority: Priority | None = None
    tags: list[str] | None = Field(None, max_length=20)
    due_at: datetime | None = None
    timezone: str | None = None
    reminder_offset_minutes: int | None = Field(None, ge=0, le=MAX_REMINDER_OFFSET_MIN, strict=True)
    recurrence_rule: str | None = Field(None, max_length=500)

    @field_validator("title", "description", "priority", "tags", "timezone", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields the client sent: null clears nullable fields, not these.
        if value is None:
            raise ValueError("cannot be null")
        return value

    @model_validator(mode="after")
    def _something_to_change(self) -> TaskUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        return self


class TaskPublic(BaseModel):
    id: str
    owner_id: str
    title: str
    description: str
    priority: Priority
    tags: list[str]
    status: Literal["pending", "completed"]
    due_at: datetime | None
    timezone: str
    reminder_offset_minutes: int | None
    recurrence_rule: str | None
    series_id: str | None
    occurrence_index: int | None
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    model_config = ConfigDict(from_attributes=True)


class TaskList(BaseModel):
    items: list[TaskPublic]
    total: int
    limit: int
    offset: int
