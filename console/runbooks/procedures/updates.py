"""A browser's view of live updates: one WebSocket client of `/ws`, collecting what the service pushes.

It authenticates as browsers do (the `todo.bearer` subprotocol carries the token, so it never lands in a URL or
an access log), answers the heartbeat pings, and keeps every message with the time it arrived. A background
thread reads; the runbook asks `wait_for(...)` with a deadline.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.runbooks.procedures import ProcedureError

SUBPROTOCOL = "todo.bearer"


@dataclass(frozen=True)
class Update:
    at: float  # unix time it arrived
    message: dict[str, Any]

    @property
    def event_type(self) -> str | None:
        return self.message.get("event_type")

    @property
    def task_id(self) -> str | None:
        data = self.message.get("data") or {}
        return data.get("entity_id") if isinstance(data, dict) else None

    @property
    def action(self) -> str | None:
        data = self.message.get("data") or {}
        return data.get("action") if isinstance(data, dict) else None


class UpdateListener:
    """Connect, wait for `ready`, then collect updates until `close()`."""

    def __init__(self, url: str, token: str, *, connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self.token = token
        self.connect_timeout_s = connect_timeout_s
        self.updates: list[Update] = []
        self.closed_reason: str | None = None
        self._lock = threading.Condition()
        self._socket: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> UpdateListener:
        from websockets.exceptions import InvalidHandshake, WebSocketException
        from websockets.sync.client import connect

        try:
            self._socket = connect(self.url, subprotocols=[SUBPROTOCOL, self.token],  # type: ignore[list-item]
                                   open_timeout=self.connect_timeout_s)
            first = json.loads(self._socket.recv(timeout=self.connect_timeout_s))
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException, ValueError) as exc:
            self.close()
            raise ProcedureError(f"the WebSocket at {self.url} did not accept the client: {exc}") from None
        while first.get("type") != "ready":  # a resync or a replayed event may come first
            first = json.loads(self._socket.recv(timeout=self.connect_timeout_s))
        self._thread = threading.Thread(target=self._read, name="ws-updates", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for raw in self._socket:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    self._socket.send(json.dumps({"type": "pong"}))
                    continue
                with self._lock:
                    self.updates.append(Update(time.time(), message))
                    self._lock.notify_all()
        except ConnectionClosed as exc:
            self.closed_reason = f"closed: {exc}"
        except (OSError, ValueError) as exc:
            self.closed_reason = f"failed: {exc}"
        with self._lock:
            self._lock.notify_all()

    def wait_for(self, predicate: Callable[[Update], bool], timeout_s: float) -> Update | None:
        """The first update (already received or still to come) for which `predicate` holds, or None."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                found = next((u for u in self.updates if predicate(u)), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0 or self.closed_reason:
                    return found
                self._lock.wait(min(remaining, 0.5))

    def received(self) -> list[Update]:
        with self._lock:
            return list(self.updates)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
