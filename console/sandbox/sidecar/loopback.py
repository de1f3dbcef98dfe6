"""HTTP/1.1 to the apps on this machine (events, jobs, invocations): kept-alive connections, many threads.

The sidecar posts every delivery, job trigger and invocation to an app on 127.0.0.1. httpx's client
cost about a millisecond of CPU per request (request building, URL merging, its h11 state machine),
most of what a delivery cost the sidecar under load; the standard library's http.client over a
kept-alive connection costs about a quarter of it. Each thread borrows an idle connection to the
port (or opens one) and gives it back after reading the whole answer.

An idle connection the app may have closed is not reused: uvicorn closes a keep-alive connection
after 5 s idle, and a request written into a connection the server is closing fails without being
read. Connections idle longer than IDLE_S, or whose socket shows the server's end of stream, are
dropped instead. A request is sent once; a failure is the caller's to retry (its resiliency policy).
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

IDLE_S = 4.0  # under uvicorn's default keep-alive (5 s), so we drop a connection before it does
MAX_IDLE_PER_PORT = 32


class AppUnreachable(Exception):
    """No answer: the connection was refused or broken, or the answer did not come in time."""

    def __init__(self, message: str, *, refused: bool = False, timed_out: bool = False) -> None:
        super().__init__(message)
        self.refused = refused
        self.timed_out = timed_out


@dataclass(frozen=True)
class AppResponse:
    status_code: int
    headers: list[tuple[str, str]]  # as received, in order, repeated names kept
    content: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


class LoopbackHTTP:
    """Kept-alive HTTP/1.1 connections to ports on 127.0.0.1, safe to share between threads."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._idle: dict[int, list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()

    def request(self, port: int, method: str, target: str, *, body: bytes = b"",
                headers: Iterable[tuple[str, str]] = (), timeout_s: float | None = None) -> AppResponse:
        """Send one request to 127.0.0.1:`port` (`target`: path and query) and read the whole answer."""
        timeout = timeout_s or self.timeout_s
        conn = self._borrow(port)
        try:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            pairs = list(headers)
            conn.putrequest(method.upper(), target, skip_host=any(k.lower() == "host" for k, _ in pairs),
                            skip_accept_encoding=True)
            for key, value in pairs:
                conn.putheader(key, value)
            if not any(k.lower() == "content-length" for k, _ in pairs):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            answer = conn.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            conn.close()
            raise AppUnreachable(f"no answer from 127.0.0.1:{port} within {timeout:g}s", timed_out=True) from exc
        except ConnectionRefusedError as exc:
            conn.close()
            raise AppUnreachable(f"connection refused by 127.0.0.1:{port}", refused=True) from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise AppUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if answer.will_close:
            conn.close()
        else:
            self._give_back(port, conn)
        return AppResponse(answer.status, answer.getheaders(), content)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn, _ in conns:
                conn.close()

    def _borrow(self, port: int) -> http.client.HTTPConnection:
        now = time.monotonic()
        while True:
            with self._lock:
                conns = self._idle.get(port)
                if not conns:
                    break
                conn, since = conns.pop()
            if now - since < IDLE_S and not _closed_by_peer(conn):
                return conn
            conn.close()
        return http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout_s)

    def _give_back(self, port: int, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            conns = self._idle.setdefault(port, [])
            if len(conns) < MAX_IDLE_PER_PORT:
                conns.append((conn, time.monotonic()))
                return
        conn.close()


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive socket that is readable has been closed (or sent something unasked): unusable."""
    sock: socket.socket | None = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
