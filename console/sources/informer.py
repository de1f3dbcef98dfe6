"""A list-and-watch cache of one kind, as client-go's informers (and k9s on top of them) keep one.

One list (paged, `limit` 500 like client-go's reflector) fills the cache and gives a resourceVersion;
a watch from that resourceVersion keeps it current (ADDED/MODIFIED/DELETED replace or drop objects,
BOOKMARKs only move the resourceVersion on); the watch is reopened from the last resourceVersion when
the server ends it; a 410 Gone means the server no longer has history that old, so the cache lists
again. A connection error is reported in the cache's `SourceHealth` and retried with a doubling
backoff, so a refresh keeps reading the last known state from memory and says how old it is.

The thread is a daemon and `stop()` cuts its watch, so a cache never keeps the process alive (the
Textual discussion #3967 found a thread worker doing exactly that); caches still running when the
interpreter exits are stopped by an `atexit` hook, because a daemon thread inside an OpenSSL read while
the interpreter tears OpenSSL down aborts the process. The client library stays out of this module: it
gets a `ListWatch` (console.sources.kube adapts the official client to it).
"""

from __future__ import annotations

import atexit
import gc
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from console.sources.health import SourceError, SourceHealth

log = logging.getLogger(__name__)

Object = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)


class Gone(Exception):
    """HTTP 410: the resourceVersion (or continue token) is older than the server keeps; list again."""


@dataclass(frozen=True)
class Page:
    items: list[Object]
    resource_version: str
    continue_token: str | None


class WatchStream(Protocol):
    def __iter__(self) -> Iterator[tuple[str, Object]]: ...
    def close(self) -> None: ...


class ListWatch(Protocol):
    """How one kind in one namespace is listed and watched; errors are `Gone` or `SourceError`."""

    def list(self, limit: int, continue_token: str | None) -> Page: ...
    def watch(self, resource_version: str, timeout_s: int) -> WatchStream: ...


@dataclass
class InformerStats:
    lists: int = 0
    relists: int = 0
    watches: int = 0
    events: int = 0
    bookmarks: int = 0
    errors: int = 0


class Informer:
    def __init__(self, name: str, source: ListWatch, health: SourceHealth, *,
                 transform: Callable[[Object], Object] | None = None, page_size: int = 500,
                 watch_timeout_s: int = 300, backoff_s: tuple[float, float] = (0.5, 30.0)) -> None:
        self.name = name
        self.health = health
        self.stats = InformerStats()
        self._source = source
        self._transform = transform or (lambda obj: obj)
        self._page_size = page_size
        self._watch_timeout_s = watch_timeout_s
        self._backoff = backoff_s
        self._objects: dict[Key, Object] = {}
        self._changes = 0  # bumped by every list and every event that changes an object (not by bookmarks)
        self._resource_version: str | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._synced = False
        self._failed_before_sync: SourceError | None = None
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        _RUNNING.add(self)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        _RUNNING.discard(self)
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_synced(self, timeout_s: float) -> None:
        """Block until the first list has filled the cache; raise the first failure instead of waiting it out."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not self._synced:
                if self._failed_before_sync is not None:
                    raise self._failed_before_sync
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    raise SourceError(self.health.source, self.health.address,
                                      f"{self.name}: no answer within {timeout_s:g}s")
                self._changed.wait(remaining)

    def wait_for_change(self, timeout_s: float) -> bool:
        """Block until the cache changes (or `timeout_s` passes); True if it changed."""
        with self._changed:
            version = self._resource_version
            self._changed.wait(timeout_s)
            return self._resource_version != version

    # --- reads ---------------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced

    @property
    def resource_version(self) -> str | None:
        return self._resource_version

    def items(self) -> list[Object]:
        """Every cached object. Objects are replaced, never changed in place: callers must not mutate them."""
        with self._changed:
            return list(self._objects.values())

    def snapshot(self) -> tuple[int, list[Object]]:
        """(change counter, every cached object): views derived from the objects stay valid while the counter
        does not move, and a cached object that is still the same Python object has not changed."""
        with self._changed:
            return self._changes, list(self._objects.values())

    def get(self, namespace: str, name: str) -> Object | None:
        with self._changed:
            return self._objects.get((namespace, name))

    # --- the loop ------------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._backoff[0]
        must_list = True
        while not self._stop.is_set():
            try:
                if must_list:
                    self._list()
                    must_list = False
                self._watch()
                delay = self._backoff[0]
            except Gone:
                self.stats.relists += 1
                must_list = True
                log.info("resource version expired; listing again", extra={"informer": self.name})
            except SourceError as exc:
                self.stats.errors += 1
                self._fail(exc)
                # Jittered, doubling backoff; a stop() wakes it at once.
                if self._stop.wait(delay * (0.8 + 0.4 * random.random())):  # noqa: S311 - jitter, not crypto
                    break
                delay = min(delay * 2, self._backoff[1])
            except Exception as exc:  # a bug must not kill the cache silently: report it in the health line
                # No traceback on a user's terminal (the root logger may be unconfigured): the health line
                # and the debug log carry it.
                log.error("informer failed: %r", exc, extra={"informer": self.name})
                log.debug("informer failure", exc_info=True, extra={"informer": self.name})
                self._fail(SourceError(self.health.source, self.health.address, f"{self.name}: {exc!r}"))
                if self._stop.wait(self._backoff[1]):
                    break

    def _fail(self, exc: SourceError) -> None:
        self.health.failed(exc)
        with self._changed:
            if not self._synced:
                self._failed_before_sync = exc
            self._changed.notify_all()

    def _list(self) -> None:
        fresh: dict[Key, Object] = {}
        token: str | None = None
        while True:
            page = self._source.list(self._page_size, token)
            for obj in page.items:
                kept = self._transform(obj)
                fresh[_key(kept)] = kept
            token = page.continue_token
            if not token:
                break
        self.stats.lists += 1
        with self._changed:
            self._objects = fresh
            self._changes += 1
            self._resource_version = page.resource_version
            self._synced = True
            self._failed_before_sync = None
            self._changed.notify_all()
        # A listed cache is thousands of long-lived dicts; left in the collector's oldest generation, every
        # full collection walks them all (a few hundred ms for 1,000 pods, in the middle of a refresh).
        # They come from JSON, so they hold no reference cycles: reference counting frees the ones the
        # watch replaces, and the collector can leave them alone (CPython's gc.freeze advice).
        gc.freeze()
        self.health.succeeded()

    def _watch(self) -> None:
        rv = self._resource_version or "0"
        stream = self._source.watch(rv, self._watch_timeout_s)
        self._stream = stream
        self.stats.watches += 1
        try:
            if self._stop.is_set():
                return
            self.health.succeeded()
            for kind, obj in stream:
                if self._stop.is_set():
                    return
                self._apply(kind, obj)
        finally:
            self._stream = None
            stream.close()

    def _apply(self, kind: str, obj: Object) -> None:
        version = ((obj.get("metadata") or {}).get("resourceVersion")) or self._resource_version
        with self._changed:
            if kind == "BOOKMARK":
                self.stats.bookmarks += 1
            elif kind == "DELETED":
                self._objects.pop(_key(obj), None)
                self.stats.events += 1
                self._changes += 1
            else:
                kept = self._transform(obj)
                self._objects[_key(kept)] = kept
                self.stats.events += 1
                self._changes += 1
            self._resource_version = version
            self._changed.notify_all()


_RUNNING: weakref.WeakSet[Informer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for informer in list(_RUNNING):
        informer.stop(timeout_s=1.0)


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
