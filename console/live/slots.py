"""One area's latest answer as the hub keeps it: the value, when it was read, and whether its source answers.

A refresh replaces the slot's `SlotView` in one assignment, so a reader (a screen, `status`) always gets a
consistent view without a lock: the value and the health it came with. A failed refresh keeps the last
good value and says since when the source has been failing: the screen goes on showing what it knew,
marked stale, instead of going blank at 3 a.m. because a port-forward dropped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypeVar

from console.sources.health import SourceAbsent, SourceError

T = TypeVar("T")
State = Literal["ok", "stale", "down", "absent", "unknown"]


@dataclass(frozen=True)
class SlotView(Generic[T]):
    """What one area knows now. `value` is the last good answer (None before the first); `error` is why the
    last refresh failed (None while the source answers); `absent` says the target has no such source."""

    name: str
    source: str  # the source's name as its errors give it: kafka, prometheus, loki, Kubernetes API, sandbox...
    address: str
    value: T | None = None
    error: str | None = None
    absent: str | None = None
    checked_at: float | None = None  # the last refresh, whatever its outcome
    updated_at: float | None = None  # the last refresh that succeeded: the value's age
    failing_since: float | None = None  # the first failure since the last success

    @property
    def state(self) -> State:
        if self.absent is not None:
            return "absent"
        if self.checked_at is None:
            return "unknown"
        if self.error is None:
            return "ok"
        return "stale" if self.value is not None else "down"

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    @property
    def reason(self) -> str | None:
        """The error without the `<source> at <address>: ` its line starts with (a table names those)."""
        if self.error is None:
            return self.absent
        return self.error.removeprefix(f"{self.source} at {self.address}: ")

    def to_dict(self) -> dict[str, object]:
        """The `status --json` source shape (console/README.md), without the value."""
        return {"name": self.name, "source": self.source, "address": self.address, "state": self.state,
                "error": self.error or self.absent, "checked_at": _round(self.checked_at),
                "updated_at": _round(self.updated_at), "failing_since": _round(self.failing_since)}


class Slot(Generic[T]):
    """The mutable holder of one area's `SlotView`, and the lock that keeps its refreshes from overlapping."""

    def __init__(self, name: str, source: str, address: str) -> None:
        self.view: SlotView[T] = SlotView(name, source, address)
        self.refreshing = threading.Lock()

    def succeeded(self, value: T, *, address: str | None = None, at: float | None = None) -> None:
        now = time.time() if at is None else at
        self.view = replace(self.view, value=value, error=None, absent=None, checked_at=now, updated_at=now,
                            failing_since=None, address=address or self.view.address)

    def failed(self, error: SourceError, *, at: float | None = None) -> None:
        now = time.time() if at is None else at
        if isinstance(error, SourceAbsent):
            self.view = replace(self.view, value=None, error=None, absent=error.reason, checked_at=now,
                                source=error.source, address=error.address)
            return
        self.view = replace(self.view, error=str(error), absent=None, checked_at=now, source=error.source,
                            address=error.address, failing_since=self.view.failing_since or now)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
