"""How a source says it is down, and how the console remembers whether each source answered.

An operator at 3 a.m. needs "Prometheus at http://...:9090 is unreachable: connection refused" on one line,
and the rest of the screen still working; a traceback from urllib3 helps nobody. Every source raises
`SourceError` for anything that is the outside world's fault, and the data layer records it in a
`SourceHealth` that the CLI prints and the dashboard shows in that source's panel.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

_ERRNO_RE = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class SourceError(Exception):
    """A source could not answer: which one, where it was asked, and why, in one line."""

    def __init__(self, source: str, address: str, reason: str) -> None:
        super().__init__(f"{source} at {address}: {reason}")
        self.source = source
        self.address = address
        self.reason = reason


class SourceAbsent(SourceError):
    """The target has no such source at all (a sandbox started without Prometheus): nothing is broken, there
    is just nothing to ask. The console says so once, as information, not as a problem."""


def network_reason(exc: BaseException) -> str:
    """What an operator needs from a client library's exception: `connection refused`, not a pool's repr.

    urllib3, requests and httpx wrap the socket error several times over; its `[Errno N] text` is the
    part that says what happened. Anything else is cut to its first line.
    """
    text = str(exc).strip()
    found = _ERRNO_RE.search(text)
    if found:
        return found.group(1).strip().lower()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@dataclass
class SourceHealth:
    """The last outcome of asking one source; `error` is None while it answers."""

    source: str
    address: str
    ok: bool = False
    error: str | None = None
    checked_at: float | None = None
    ok_at: float | None = field(default=None)

    def succeeded(self) -> None:
        self.ok, self.error = True, None
        self.checked_at = self.ok_at = time.time()

    def failed(self, error: SourceError | str) -> None:
        self.ok, self.error = False, str(error)
        self.checked_at = time.time()

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "address": self.address, "ok": self.ok, "error": self.error,
                "checked_at": self.checked_at, "ok_at": self.ok_at}
