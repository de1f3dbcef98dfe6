"""Dapr's HTTP API, the parts used here: health, metadata, invocation, publish, state, secrets, jobs.

The Python SDK's `invoke_method` goes over HTTP (/v1.0/invoke/<app-id>/method/<path>) by
default (DAPR_API_METHOD_INVOCATION_PROTOCOL=http), and `DaprClient()` waits on
/v1.0/healthz/outbound before its first call, so these must behave like daprd's:
- /v1.0/healthz: 204 once the app listens and subscriptions started, else 500
  ERR_HEALTH_NOT_READY; /v1.0/healthz/outbound: 204 once the API servers listen.
- invoke: any verb, query string and headers forwarded; the callee's status, headers and
  body passed back; a `dapr-app-id` header on any path routes the same way.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from console.sandbox.sidecar import errors, http_blocks
from console.sandbox.sidecar.httpdate import http_date
from console.sandbox.sidecar.invoke import with_trace
from console.sandbox.sidecar.runtime import CAPABILITIES, RUNTIME_VERSION, Runtime

log = logging.getLogger(__name__)


def _metadata_json(rt: Runtime) -> dict[str, object]:
    """GET /v1.0/metadata, with daprd's JSON field names."""
    body: dict[str, object] = {
        "id": rt.app_id,
        "runtimeVersion": RUNTIME_VERSION,
        "enabledFeatures": [],
        "components": [{"name": c.name, "type": c.type, "version": c.version,
                        "capabilities": CAPABILITIES.get(c.kind, [])} for c in rt.components],
        "subscriptions": [{
            "pubsubname": s.pubsubname, "topic": s.topic, "metadata": s.metadata,
            "deadLetterTopic": s.dead_letter_topic,
            "rules": [{"match": "", "path": s.default_route}],
            "type": "DECLARATIVE" if s.declarative else "PROGRAMMATIC",
        } for s in rt.subscriptions],
        "extended": {"daprRuntimeVersion": RUNTIME_VERSION, "sandbox": "true"},
    }
    if rt.options.app_port is not None:
        body["appConnectionProperties"] = {"port": rt.options.app_port, "protocol": "http",
                                           "channelAddress": "127.0.0.1"}
    return body


class _Handler(BaseHTTPRequestHandler):
    """One connection's requests. The answer's status line, headers and body leave in one write
    (a buffered `wfile`, flushed by the base class after each request) with Nagle off: written as
    two, the body waited for the caller's delayed ACK, up to 40 ms per call on loopback."""

    protocol_version = "HTTP/1.1"
    server_version = "daprd-sandbox"
    wbufsize = -1  # io.DEFAULT_BUFFER_SIZE; handle_one_request flushes it
    disable_nagle_algorithm = True
    rt: Runtime  # set on the subclass built by serve()

    def log_message(self, format: str, *args: object) -> None:
        if log.isEnabledFor(logging.DEBUG):  # formatted only when it is logged: it runs per request
            log.debug("http %s", format % args)

    def handle_expect_100(self) -> bool:
        """The interim `100 Continue` must leave now, not with the answer: the caller (curl, for bodies
        over 1 KiB) waits for it before sending the body."""
        answered = super().handle_expect_100()
        self.wfile.flush()
        return answered

    def date_time_string(self, timestamp: float | None = None) -> str:
        return http_date() if timestamp is None else super().date_time_string(timestamp)

    def _send(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
              content_type: str | None = None) -> None:
        self.send_response(status)
        for k, v in headers or []:
            self.send_header(k, v)
        if content_type:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, err: errors.DaprError) -> None:
        self._send(err.http_status, err.http_body(), content_type="application/json")

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        body = self._body()
        try:
            app_id_header = self.headers.get("dapr-app-id")
            if app_id_header:
                self._invoke(app_id_header, path.lstrip("/"), url.query, body)
            elif path.startswith("/v1.0/invoke/") and "/method/" in path:
                target, _, method = path[len("/v1.0/invoke/"):].partition("/method/")
                self._invoke(unquote(target), method, url.query, body)
            elif path == "/v1.0/healthz" and self.command == "GET":
                if self.rt.ready.is_set():
                    self._send(204)
                else:
                    self._error(errors.not_ready("app not ready or subscriptions not started"))
            elif path == "/v1.0/healthz/outbound" and self.command == "GET":
                if self.rt.outbound_ready.is_set():
                    self._send(204)
                else:
                    self._error(errors.outbound_not_ready())
            elif path == "/v1.0/metadata" and self.command == "GET":
                self._send(200, json.dumps(_metadata_json(self.rt)).encode(), content_type="application/json")
            elif path.startswith("/v1.0/publish/") and self.command == "POST":
                self._publish(path[len("/v1.0/publish/"):], url.query, body)
            elif path.startswith("/v1.0/state/"):
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = http_blocks.state(self.rt, self.command, path[len("/v1.0/state/"):],
                                                           headers, body)
                self._send(status, payload, extra)
            elif path.startswith(("/v1.0-alpha1/jobs/", "/v1.0/jobs/")):
                status, payload, extra = http_blocks.jobs(self.rt, self.command, path.split("/jobs/", 1)[1], body)
                self._send(status, payload, extra)
            elif path.startswith("/v1.0/secrets/") and self.command == "GET":
                status, payload, extra = http_blocks.secrets(self.rt, path[len("/v1.0/secrets/"):])
                self._send(status, payload, extra)
            else:
                self._send(404, json.dumps({"errorCode": "ERR_NOT_FOUND",
                                            "message": f"method {path!r} is not found"}).encode(),
                           content_type="application/json")
        except errors.DaprError as exc:
            self._error(exc)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller went away
        except Exception as exc:
            log.error("http api failure", extra={"path": path, "error": f"{type(exc).__name__}: {exc}"})
            self._error(errors.DaprError(errors.C.INTERNAL, 500, f"internal error: {exc}", "ERR_INTERNAL"))

    def _invoke(self, app_id: str, method: str, query: str, body: bytes) -> None:
        headers = with_trace(list(self.headers.items()), from_grpc=False)
        result = self.rt.invoker.invoke(app_id, method, self.command, query, headers, body)
        passthrough = [(k, v) for k, v in result.headers
                       if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-type",
                                            "date", "server")]
        self._send(result.status, result.body, passthrough, result.content_type or None)

    def _publish(self, rest: str, query: str, body: bytes) -> None:
        pubsub, _, topic = rest.partition("/")
        metadata = {k[len("metadata."):]: v for k, v in parse_qsl(query) if k.startswith("metadata.")}
        self.rt.publish(unquote(pubsub), unquote(topic), body,
                        self.headers.get("content-type") or "", metadata,
                        traceparent=self.headers.get("traceparent"), tracestate=self.headers.get("tracestate", ""),
                        correlation_id=self.headers.get("x-correlation-id"))
        self._send(204)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """socketserver prints tracebacks to stderr; keep the log JSON."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            log.error("http connection failed", extra={"client": str(client_address), "error": repr(exc)})


def serve(runtime: Runtime, port: int) -> ThreadingHTTPServer:
    """Start the HTTP API on loopback in a background thread."""
    handler = type("DaprHttpHandler", (_Handler,), {"rt": runtime})
    server = _Server(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name="http-api", daemon=True).start()
    return server
