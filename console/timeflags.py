"""Time flags read the same way by every command: a duration (`90s`, `15m`, `2h`, `7d`) or an instant.

`--since 15m` means fifteen minutes ago, `--until 2024-05-01T12:00:00Z` an RFC 3339 instant (a naive one is
UTC, as the platform's logs are), `--range 1h` a length. Bad values are a one-line `CliError`, never a
traceback, and say what would have been accepted.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from console.cli import CliError

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_s(value: str, flag: str) -> float:
    """Seconds in `value` (`90s`, `15m`, `2h`, `7d`); a CliError naming `flag` otherwise."""
    match = _DURATION_RE.match(value.strip())
    if not match or float(match.group(1)) <= 0:
        raise CliError(f"{flag} {value!r}: expected a duration such as 30s, 15m, 2h or 7d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def instant(value: str, flag: str, *, now: float | None = None) -> float:
    """Unix seconds for `value`: a duration ago, or an RFC 3339 instant."""
    now = time.time() if now is None else now
    if _DURATION_RE.match(value.strip()):
        return now - duration_s(value, flag)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{flag} {value!r}: expected a duration ago (15m) or a time such as "
                       "2024-05-01T12:00:00Z") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
