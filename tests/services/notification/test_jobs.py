"""Reading a fired job's data back, whichever way daprd renders the packed bytes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from services.notification.firing import current_remind_at
from services.notification.jobs import due_time, job_name, parse_job_body

DATA = {"task_id": "t-1", "task_version": 2, "user_id": "alice", "title": "Pay rent",
        "due_at": "2026-12-01T08:00:00+00:00", "remind_at": "2026-12-01T07:45:00+00:00", "correlation_id": "c-1"}


@pytest.mark.parametrize("body", [
    {"@type": "type.googleapis.com/google.protobuf.BytesValue",
     "value": base64.b64encode(json.dumps(DATA).encode()).decode()},
    {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(DATA)},
    {"@type": "type.googleapis.com/google.protobuf.Value", "value": DATA},
    DATA,
])
def test_job_data_in_every_wrapper(body: dict) -> None:
    job = parse_job_body(json.dumps(body).encode())
    assert job.task_id == "t-1"
    assert job.task_version == 2
    assert job.correlation_id == "c-1"
    assert job.remind_at == datetime(2026, 12, 1, 7, 45, tzinfo=UTC)


@pytest.mark.parametrize("body", [b"", b"[1]", b'{"task_id": "t-1"}',
                                  b'{"@type": "type.googleapis.com/google.protobuf.BytesValue", "value": "%%"}'])
def test_bad_job_data_is_a_readable_error(body: bytes) -> None:
    with pytest.raises(ValueError, match="job data is not a reminder"):
        parse_job_body(body)


def test_names_and_due_times() -> None:
    assert job_name("t-1") == "reminder-t-1"
    assert due_time(datetime.fromisoformat("2026-12-01T08:45:10+01:00")) == "2026-12-01T07:45:10Z"
    # Rounded up, never down: a reminder must not fire before its time.
    assert due_time(datetime.fromisoformat("2026-12-31T23:59:59.000001+00:00")) == "2027-01-01T00:00:00Z"


def test_the_reminder_time_a_task_has_now() -> None:
    task = {"status": "pending", "due_at": "2026-12-01T08:00:00+00:00", "reminder_offset_minutes": 15}
    assert current_remind_at(task) == datetime(2026, 12, 1, 7, 45, tzinfo=UTC)
    assert current_remind_at({**task, "reminder_offset_minutes": None}) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert current_remind_at({**task, "due_at": None}) is None
    assert current_remind_at({**task, "status": "completed"}) is None
