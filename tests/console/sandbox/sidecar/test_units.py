"""Pure parts of the sidecar whose rules come from Go libraries: durations, Resiliency CRs, breakers.

Durations: Go time.ParseDuration. Breakers: sony/gobreaker as dapr/dapr pkg/resiliency/breaker wraps it.
"""

from __future__ import annotations

import pytest

from console.sandbox.sidecar.resiliency import CircuitBreaker, Resiliency, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [("5s", 5), ("500ms", 0.5), ("1m30s", 90), ("1h", 3600),
                                               ("1.5s", 1.5), ("0", 0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5", "s", "5 s", "1x"])
def test_bad_go_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


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
