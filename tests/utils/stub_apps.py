"""Small HTTP apps (stdlib http.server in a thread) standing in for services behind a sidecar."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from console.sandbox.ports import free_port
from tests.utils.waiting import wait_until


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    header_lines: list[tuple[str, str]] = field(default_factory=list)  # repeated headers kept apart

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StubApp:
    """An HTTP app: `routes[path] = (status, body)` or a callable(Request) -> (status, body)."""

    port: int
    routes: dict[str, Any] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def calls(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def wait_calls(self, path: str, n: int = 1, timeout: float = 10.0) -> list[Request]:
        return wait_until(lambda: (c := self.calls(path)) and len(c) >= n and c, timeout,
                          message=f"{n} call(s) to {path} on app :{self.port}")

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def start_app(routes: dict[str, Any] | None = None, port: int | None = None) -> StubApp:
    app = StubApp(port or free_port(), routes or {})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def handle_any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          self.rfile.read(length) if length else b"", time.monotonic(),
                          [(k.lower(), v) for k, v in self.headers.items()])
            with app.lock:
                app.requests.append(req)
            route = app.routes.get(self.path.split("?")[0])
            if route is None:
                status, body, headers = 404, b"not found", dict[str, str]()
            else:
                answer = route(req) if callable(route) else route
                status, body = answer[0], answer[1]
                headers = answer[2] if len(answer) > 2 else {}
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            if "content-type" not in {k.lower() for k in headers}:
                self.send_header("content-type", "application/json" if not isinstance(body, bytes)
                                 else "text/plain")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    ThreadingHTTPServer.daemon_threads = True
    app.server = ThreadingHTTPServer(("127.0.0.1", app.port), Handler)
    threading.Thread(target=app.server.serve_forever, daemon=True).start()
    return app
