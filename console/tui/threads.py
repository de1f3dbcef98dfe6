"""The threads the dashboard's workers run in: daemon threads, so quitting never waits on a source.

Textual runs a thread worker in its event loop's default executor, and both asyncio (at the end of
`asyncio.run`) and the interpreter (at exit) join a ThreadPoolExecutor's threads: one refresh blocked on a
source that does not answer (a port-forward gone quiet, a Prometheus behind a dead proxy) would keep
`todo-console` alive for its whole timeout after `q` (Textual discussion #3967). The hub closes its sources
on quit, which ends most reads at once; this executor makes sure the rest cannot hold the process: each
call gets a daemon thread, and shutting the executor down does not wait for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class DaemonThreadExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor (asyncio accepts no other kind as a loop's default) whose calls run in daemon
    threads of their own, left to finish or die with the process."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to whoever awaits the future, as ThreadPoolExecutor does
                future.set_exception(exc)
            else:
                future.set_result(result)
        threading.Thread(target=run, name=f"dashboard-{getattr(fn, '__name__', 'work')}", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for: the threads are daemons (the hub has closed their sources already)."""
