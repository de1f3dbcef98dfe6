"""The Dapr Job behind each reminder: its name, its data, and reading that data back when it fires.

One job per task (`reminder-<task id>`): scheduling again overwrites it, so a moved due date
simply replaces the pending reminder and a task never has two.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

JOB_PREFIX = "reminder-"


class ReminderJob(BaseModel):
    """The job's data: enough to check the task again and to word the notification."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str = Field(min_length=1)
    task_version: int = Field(ge=1)
    user_id: str = Field(min_length=1)
    title: str
    due_at: datetime
    remind_at: datetime
    # The reminder event's correlation id: the delivery's logs join the request that set it.
    correlation_id: str | None = None


def job_name(task_id: str) -> str:
    return JOB_PREFIX + task_id


def due_time(instant: datetime) -> str:
    """RFC 3339 in UTC, whole seconds rounded up: a reminder may fire late by a fraction, never early."""
    utc = instant.astimezone(UTC)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _unwrap(value: Any) -> Any:
    """The job data as JSON, whichever way daprd rendered it.

    We schedule the data as a `google.protobuf.Value`, which daprd (1.14.4+) posts to an HTTP app
    as the bare JSON. A protojson-wrapped form (`{"@type": ".../google.protobuf.BytesValue" |
    "StringValue" | "Value", "value": ...}`), as other schedulers or older sidecars produce, is
    unwrapped too.
    """
    if isinstance(value, dict) and "@type" in value:
        kind, inner = str(value["@type"]).rsplit("/", 1)[-1], value.get("value")
        if kind == "google.protobuf.BytesValue" and isinstance(inner, str):
            return json.loads(base64.b64decode(inner, validate=True))
        if kind == "google.protobuf.StringValue" and isinstance(inner, str):
            return json.loads(inner)
        return inner
    return value


def parse_job_body(body: bytes) -> ReminderJob:
    """The job's data from the trigger request; ValueError with a readable message otherwise."""
    try:
        return ReminderJob.model_validate(_unwrap(json.loads(body)))
    except (ValueError, TypeError) as exc:
        detail = exc.errors(include_url=False) if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"job data is not a reminder: {detail}") from exc
