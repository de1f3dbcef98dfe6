"""The sidecar's channel to its own app: wait for the port, then POST events, jobs, subscribe calls
(kept-alive, see loopback.py).

daprd blocks until the app listens on --app-port (pkg/runtime/runtime.go blockUntilAppIsReady,
100 ms dial loop) before it fetches /dapr/subscribe, starts subscriptions and reports healthy;
outbound API calls (publish, state...) work before that. We do the same.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable

from console.sandbox.sidecar.loopback import AppResponse, LoopbackHTTP

log = logging.getLogger(__name__)


class AppChannel:
    """HTTP to 127.0.0.1:<app-port>; `ready` is set once the port accepted a connection."""

    def __init__(self, app_port: int | None, stop: threading.Event) -> None:
        self.app_port = app_port
        self.ready = threading.Event()
        self._stop = stop
        self._http = LoopbackHTTP(timeout_s=60.0)

    def request(self, method: str, path: str, *, body: bytes = b"", headers: Iterable[tuple[str, str]] = (),
                timeout_s: float | None = None) -> AppResponse:
        """One request to the app; raises loopback.AppUnreachable when it does not answer."""
        return self._http.request(self.app_port or 0, method, path, body=body, headers=headers, timeout_s=timeout_s)

    def wait_for_app(self) -> bool:
        """Block until the app listens (True) or the sidecar stops (False)."""
        if self.app_port is None:
            return False
        waited = 0
        while not self._stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.app_port), timeout=0.5):
                    break
            except OSError:
                waited += 1
                if waited % 100 == 0:
                    log.info("waiting for application to listen", extra={"app_port": self.app_port})
                self._stop.wait(0.05)
        else:
            return False
        if not self.ready.is_set():
            log.info("application discovered", extra={"app_port": self.app_port})
        self.ready.set()
        return True

    def close(self) -> None:
        self._http.close()
