"""Log lines of every shape the platform writes, and the failure-reason rule, on crafted lines."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from console.cli import CliError
from console.model.logs import LogLine, failure_reason, parse_line
from console.output import sparkline
from console.sandbox.sidecar.logs import JsonFormatter as SidecarFormatter
from console.timeflags import duration_s, instant
from services.platform import correlation
from services.platform.logs import JsonFormatter as ServiceFormatter

EVENT_ID = "5b1f0c7e-0d7a-4c55-9a53-3f1d2f7f1a11"
CREATED = 1714564800.123  # 2024-05-01T12:00:00.123Z


def record(name: str, level: int, msg: str, args: tuple[object, ...] | None, extra: dict[str, Any]) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    rec.created, rec.msecs = CREATED, 123.0
    rec.__dict__.update(extra)
    return rec


def service_line(msg: str, level: int = logging.INFO, cid: str | None = None, **extra: Any) -> str:
    """A line exactly as a service writes it (services/platform/logs.py)."""
    token = correlation.bind(correlation.from_headers(cid, None)) if cid else None
    try:
        return ServiceFormatter("worker").format(record("services.platform.consumer", level, msg, None, extra))
    finally:
        if token is not None:
            correlation.reset(token)


def sidecar_line(msg: str, *args: object, level: int = logging.WARNING, **extra: Any) -> str:
    """A line exactly as the dev sidecar (and daprd with --log-as-json) writes it."""
    return SidecarFormatter("worker").format(record("console.sandbox.sidecar.subscriber", level, msg, args, extra))


def test_a_service_line_keeps_its_ids_and_fields() -> None:
    raw = service_line("event handled", cid="req-42", topic="task-events", event_id=EVENT_ID, event_type="t")
    line = parse_line(raw, source="worker")
    assert line is not None
    assert (line.service, line.level, line.msg) == ("worker", "info", "event handled")
    assert (line.correlation_id, line.event_id) == ("req-42", EVENT_ID)
    assert line.fields["topic"] == "task-events"
    assert "traceparent" in line.fields
    assert "correlation_id" not in line.fields  # promoted, not repeated
    assert line.ts == pytest.approx(CREATED)
    assert line.time_iso == "2024-05-01T12:00:00.123Z"
    assert line.to_dict()["correlation_id"] == "req-42"


def test_a_sidecar_line_names_its_app_and_event() -> None:
    raw = sidecar_line("dropping expired pub/sub event", id=EVENT_ID, topic="task-events")
    line = parse_line(raw, source="worker-dapr")
    assert line is not None
    assert (line.service, line.level, line.event_id, line.is_sidecar) == ("worker", "warning", EVENT_ID, True)
    assert "id" not in line.fields
    assert line.ts == pytest.approx(CREATED)


def test_text_without_a_time_is_kept_only_when_the_caller_knows_when() -> None:
    assert parse_line("Traceback (most recent call last):", source="backend") is None
    line = parse_line("Traceback (most recent call last):", source="backend", ts=100.0)
    assert line is not None
    assert (line.msg, line.ts, line.level) == ("Traceback (most recent call last):", 100.0, None)


def lines(*raws: tuple[str, str, float]) -> list[LogLine]:
    parsed = [parse_line(raw, source=source, ts=ts) for source, raw, ts in raws]
    return [line for line in parsed if line is not None]


def test_the_apps_own_error_is_the_reason() -> None:
    found = lines(
        ("worker-dapr", sidecar_line("DROP status returned from app while processing pub/sub event %s", EVENT_ID), 3.0),
        ("worker", service_line("event dropped", logging.WARNING, event_id=EVENT_ID,
                                error=f"recurring task {EVENT_ID[:8]} has no due date"), 2.0),
        ("worker", service_line("event handled", event_id=EVENT_ID), 1.0),
    )
    assert failure_reason(found) == f"worker: event dropped: recurring task {EVENT_ID[:8]} has no due date"


def test_the_latest_failure_wins_and_a_traceback_gives_its_last_line() -> None:
    found = lines(
        ("worker", service_line("event failed; asking for redelivery", logging.WARNING, event_id=EVENT_ID,
                                error="backend answered 503 for the next instance"), 1.0),
        ("worker", service_line("event handler error; asking for redelivery", logging.ERROR, event_id=EVENT_ID,
                                exc="Traceback (most recent call last):\n  ...\nKeyError: 'due_at'"), 2.0),
    )
    assert failure_reason(found) == "worker: event handler error; asking for redelivery: KeyError: 'due_at'"


def test_without_the_apps_words_the_sidecars_delivery_error_is_the_reason() -> None:
    message = (f"retriable error returned from app while processing pub/sub event {EVENT_ID}, topic: task-events, "
               "body: . status code returned: 500")
    found = lines(("worker-dapr", sidecar_line(message), 5.0),
                  ("worker-dapr", sidecar_line("delivered", level=logging.DEBUG, id=EVENT_ID), 1.0))
    assert failure_reason(found) == f"worker-dapr: {message}"


def test_no_failure_line_means_no_reason() -> None:
    assert failure_reason(lines(("worker", service_line("event handled", event_id=EVENT_ID), 1.0))) is None
    assert failure_reason([]) is None


def test_time_flags() -> None:
    assert duration_s("15m", "--since") == 900
    assert duration_s("1.5h", "--range") == 5400
    assert instant("30s", "--since", now=1000.0) == 970.0
    assert instant("2024-05-01T12:00:00Z", "--until") == 1714564800.0
    assert instant("2024-05-01T12:00:00", "--until") == 1714564800.0  # naive is UTC, as the logs are
    for bad in ("15", "-5m", "0s", "yesterday"):
        with pytest.raises(CliError, match="expected a duration"):
            instant(bad, "--since") if bad == "yesterday" else duration_s(bad, "--since")


def test_sparkline_scales_to_the_largest_value() -> None:
    assert sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█"
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([]) == ""
