"""Pure parts of the sidecar whose rules come from Go libraries: durations, cron schedules, CEL subset.

Durations: Go time.ParseDuration. Schedules: robfig/cron v3 as the Dapr Scheduler configures it
(https://docs.dapr.io/developing-applications/building-blocks/jobs/jobs-features-concepts/#schedule).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.sandbox.sidecar import cron
from console.sandbox.sidecar.resiliency import CircuitBreaker, Resiliency, parse_duration
from console.sandbox.sidecar.routing import matches

T0 = datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(("text", "seconds"), [("5s", 5), ("500ms", 0.5), ("1m30s", 90), ("1h", 3600),
                                               ("1.5s", 1.5), ("0", 0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5", "s", "5 s", "1x"])
def test_bad_go_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


@pytest.mark.parametrize(("spec", "expected"), [
    ("@every 1s", datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC)),
    ("@every 1500ms", datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC)),  # whole seconds, as robfig
    ("*/10 * * * * *", datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)),
    ("0 30 * * * *", datetime(2026, 1, 1, 12, 30, tzinfo=UTC)),
    ("0 0 9 * * MON", datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
    ("0 0 0 1 * *", datetime(2026, 2, 1, tzinfo=UTC)),
    ("@daily", datetime(2026, 1, 2, tzinfo=UTC)),
    ("@hourly", datetime(2026, 1, 1, 13, 0, tzinfo=UTC)),
    ("0 0 0 13 * FRI", datetime(2026, 1, 2, tzinfo=UTC)),  # dom OR dow when both are set
])
def test_cron_next(spec: str, expected: datetime) -> None:
    assert cron.parse(spec).next_after(T0) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("* * * * *", "expected exactly 6 fields, found 5: [* * * * *]"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("61 * * * * *", "end of range (61) above maximum (59): 61"),
])
def test_cron_errors(spec: str, message: str) -> None:
    with pytest.raises(cron.CronError) as err:
        cron.parse(spec)
    assert str(err.value) == message


def test_route_rule_subset() -> None:
    event = {"type": "todo.task.created.v1", "data": {"priority": "high", "n": 2}}
    assert matches('event.type == "todo.task.created.v1"', event)
    assert matches("event.data.priority == 'high' && event.data.n == 2", event)
    assert not matches("event.data.priority != 'high' || event.type == 'x'", event)
    assert not matches("event.type.startsWith('todo')", event)  # unsupported: never matches


def test_a_malformed_resiliency_is_skipped_not_fatal() -> None:
    good = {"policies": {"retries": {"r": {"policy": "constant", "duration": "1s", "maxRetries": 2}}},
            "targets": {"apps": {"backend": {"retry": "r"}}}}
    bad = {"policies": {"timeouts": {"t": "5 seconds"}}, "targets": {"apps": {"worker": {"timeout": "t"}}}}
    res = Resiliency([bad, good])
    retry = res.app_policy("backend").retry
    assert retry is not None
    assert retry.max_retries == 2
    assert res.app_policy("worker").timeout is None  # the bad CR contributed nothing


def test_circuit_breaker_trips_and_recovers() -> None:
    cb = CircuitBreaker("t", max_requests=1, timeout=0.05, trip="consecutiveFailures > 2")
    for _ in range(3):
        cb.before()
        cb.after(False)
    assert cb.state == "open"
    import time

    time.sleep(0.06)
    assert cb.state == "half-open"
    cb.before()
    cb.after(True)
    assert cb.state == "closed"
