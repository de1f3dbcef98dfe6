"""The event contract: envelopes round-trip, unknown or malformed events are refused clearly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.platform import correlation, events


def reminder_data() -> events.ReminderScheduledData:
    now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    return events.ReminderScheduledData(timestamp=now, user_id="alice", entity_id="t1", title="x",
                                        due_at=now, remind_at=now, task_version=1)


def test_build_and_parse_round_trip_with_correlation() -> None:
    token = correlation.bind(correlation.from_headers("corr-9", None))
    try:
        event = events.build_event(source="backend", event_type=events.REMINDER_SCHEDULED, subject="t1",
                                   data=reminder_data())
    finally:
        correlation.reset(token)
    assert event.correlationid == "corr-9"
    assert event.specversion == "1.0"
    assert event.subject == "t1"
    # daprd adds its own attributes on delivery; consumers must accept them.
    delivered = {**event.model_dump(mode="json"), "topic": "reminders", "pubsubname": "kafka-pubsub",
                 "traceid": event.traceparent}
    parsed, data = events.parse_event(delivered)
    assert parsed.id == event.id
    assert data == reminder_data()


def test_data_must_match_the_type() -> None:
    with pytest.raises(events.EventError, match="does not carry"):
        events.build_event(source="backend", event_type=events.TASK_CREATED, subject="t1", data=reminder_data())


def test_unknown_types_and_bad_data_are_refused() -> None:
    base = events.build_event(source="b", event_type=events.REMINDER_SCHEDULED, subject="t1",
                              data=reminder_data()).model_dump(mode="json")
    with pytest.raises(events.EventError, match="unknown event type"):
        events.parse_event({**base, "type": "todo.task.exploded.v1"})
    with pytest.raises(events.EventError, match="data invalid"):
        events.parse_event({**base, "data": {"user_id": "alice"}})
    with pytest.raises(events.EventError, match="not a valid CloudEvent"):
        events.parse_event(b'{"specversion": "0.3"}')
