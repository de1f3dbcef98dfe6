"""One API call's lifetime, so policies stop retrying when the caller is gone (daprd's request context)."""

from __future__ import annotations

import threading
import time


class CallScope:
    """One API call's lifetime: set `done` when the caller cancels or its deadline passes."""

    def __init__(self, shutdown: threading.Event, deadline: float | None = None) -> None:
        self.done = threading.Event()
        self.deadline = deadline  # time.monotonic() value
        if shutdown.is_set():
            self.done.set()
        if deadline is not None:
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), self.done.set)
            timer.daemon = True
            timer.start()

    def bound(self, timeout: float | None) -> float | None:
        """A per-attempt timeout that does not outlive the caller's deadline."""
        if self.deadline is None:
            return timeout
        left = max(0.05, self.deadline - time.monotonic())
        return left if timeout is None else min(timeout, left)
