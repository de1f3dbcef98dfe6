"""A local HTTP(S) server for stand-ins: 127.0.0.1, a free port, served from a daemon thread.

Every request goes to one `handle(request)` function; `reply()` writes an answer in one piece (with Nagle
off, so a small answer is not held back waiting for an ACK on keep-alive connections).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalServer:
    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None], name: str,
                 tls: ssl.SSLContext | None = None) -> None:
        self.handle, self.name, self.tls = handle, name, tls
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        handle = self.handle

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name=self.name, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def read_body(request: BaseHTTPRequestHandler) -> bytes:
    length = int(request.headers.get("content-length") or 0)
    return request.rfile.read(length) if length else b""


def reply(request: BaseHTTPRequestHandler, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("content-length", str(len(payload)))
    request.end_headers()
    if payload:
        request.wfile.write(payload)
