"""One API call's lifetime, so policies stop retrying when the caller is gone (daprd's request context)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Stop(Protocol):
    """What a retry loop watches: `is_set()` ends it, `wait(s)` sleeps unless it ends first."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class CallScope:
    """One API call's lifetime: over when the caller cancels (`done`), its deadline passes, or the sidecar stops.

    It is a `Stop` without a timer thread per call: the deadline is checked when asked and bounds
    every wait, so a call costs no more than the Event it holds.
    """

    def __init__(self, shutdown: threading.Event, deadline: float | None = None) -> None:
        self.done = threading.Event()
        self.deadline = deadline  # time.monotonic() value
        self._shutdown = shutdown

    def is_set(self) -> bool:
        return (self.done.is_set() or self._shutdown.is_set()
                or (self.deadline is not None and time.monotonic() >= self.deadline))

    def wait(self, timeout: float | None = None) -> bool:
        if self.deadline is not None:
            left = max(0.0, self.deadline - time.monotonic())
            timeout = left if timeout is None else min(timeout, left)
        self.done.wait(timeout)
        return self.is_set()

    def bound(self, timeout: float | None) -> float | None:
        """A per-attempt timeout that does not outlive the caller's deadline."""
        if self.deadline is None:
            return timeout
        left = max(0.05, self.deadline - time.monotonic())
        return left if timeout is None else min(timeout, left)
