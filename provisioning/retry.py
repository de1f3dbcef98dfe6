"""When to try an OCI call again, and after how long. Pure, so the policy is tested without a server.

OCI answers 429 when a tenancy calls too fast and 500/502/503/504 when a service hiccups; both are safe to
retry because every create carries an opc-retry-token (a retried create returns the first one's result).
A 409 is not retried blindly: the caller looks at the resource again first (see oci_client).
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Backoff:
    base_s: float
    max_s: float
    max_attempts: int

    def delay(self, attempt: int, retry_after: str | None = None,
              jitter: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        The server's Retry-After wins (capped at max_s); otherwise exponential backoff with jitter (half to all of the step), so
        many clients throttled together do not come back together.
        """
        told = retry_after_seconds(retry_after)
        if told is not None:
            return min(told, self.max_s)
        ceiling = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        return ceiling * (0.5 + jitter() / 2)

    def gives_up_after(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
