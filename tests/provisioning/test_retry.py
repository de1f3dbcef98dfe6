"""When to call OCI again: 429 and 5xx only, after what Retry-After says, else backoff with jitter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioning.retry import Backoff, retry_after_seconds, retryable


@pytest.mark.parametrize(("status", "expected"), [(429, True), (500, True), (503, True), (400, False),
                                                  (404, False), (409, False), (501, False)])
def test_what_is_retried(status: int, expected: bool) -> None:
    assert retryable(status) is expected


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("12") == 12
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_the_server_decides_within_the_cap() -> None:
    backoff = Backoff(base_s=1, max_s=60, max_attempts=5)
    assert backoff.delay(1, "7") == 7
    assert backoff.delay(1, "3600") == 60


def test_exponential_with_jitter_and_a_cap() -> None:
    backoff = Backoff(base_s=1, max_s=10, max_attempts=5)
    assert [backoff.delay(n, jitter=lambda: 1.0) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]
    assert [backoff.delay(n, jitter=lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1, 2]
    assert not backoff.gives_up_after(4)
    assert backoff.gives_up_after(5)
