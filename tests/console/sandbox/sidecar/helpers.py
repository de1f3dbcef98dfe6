"""Helpers for the dev sidecar's conformance tests (fixtures are in conftest.py).

Everything is real: a tansu broker (session-scoped; KAFKA_BOOTSTRAP points at another broker),
the sidecar as a subprocess (`python -m console.sandbox.sidecar`), the official Dapr SDK as the
client, and small HTTP apps (stdlib http.server in a thread) standing in for services.
Resources (Component/Subscription/Resiliency YAML) come from a temporary directory, so the tests
do not depend on kustomize/base.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from console.sandbox.broker import BrokerError, tansu_binary
from console.sandbox.ports import free_port
from tests.utils.dapr_sdk import set_sdk_settings
from tests.utils.required import require
from tests.utils.waiting import wait_until

REPO = Path(__file__).resolve().parents[4]


# ---- broker ------------------------------------------------------------------------------------
def require_tansu() -> None:
    if os.environ.get("KAFKA_BOOTSTRAP"):
        return
    require(tansu_binary, BrokerError, "the tansu broker (install the 'sandbox' extra)")


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create topics explicitly (tansu would auto-create with 4 partitions)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(name, parts, 1) for name, parts in topics.items() if name not in existing]
        if new:
            admin.create_topics(new)
    finally:
        admin.close()


class TopicReader:
    """Everything in a topic from the beginning; `wait(pred)` polls until pred(all records so far)."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self.records: list[Any] = []

    def wait(self, predicate: Callable[[list[Any]], bool], timeout: float = 10.0, message: str = "records") -> list[Any]:
        def check() -> bool:
            for batch in self.consumer.poll(timeout_ms=50).values():
                self.records.extend(batch)
            return predicate(self.records)
        wait_until(check, timeout, 0, message)
        return self.records

    def read(self, n: int = 1, timeout: float = 10.0) -> list[Any]:
        return self.wait(lambda rs: len(rs) >= n, timeout, f"{n} record(s)")[:n]

    def by_key(self, *keys: bytes, timeout: float = 10.0) -> dict[bytes, Any]:
        self.wait(lambda rs: set(keys) <= {r.key for r in rs}, timeout, f"records with keys {keys}")
        return {r.key: r for r in self.records if r.key in keys}


@contextmanager
def topic_reader(bootstrap: str, topic: str) -> Iterator[TopicReader]:
    """A reader over `topic` (all partitions, from the beginning)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    parts = wait_until(lambda: topic in consumer.topics() and consumer.partitions_for_topic(topic), 10,
                       message=f"topic {topic}")
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    try:
        yield TopicReader(consumer)
    finally:
        consumer.close()


# ---- stand-in apps -------------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

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
                          self.rfile.read(length) if length else b"", time.monotonic())
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


# ---- sidecars ------------------------------------------------------------------------------------
@dataclass
class Sidecar:
    app_id: str
    http_port: int
    grpc_port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def client(self, headers: dict[str, str] | None = None) -> Any:
        """An official SDK client bound to this sidecar (the SDK reads its ports from settings).

        `headers` go out on every call, as the services send traceparent and x-correlation-id:
        as gRPC metadata (a client interceptor) and as HTTP headers (the SDK's headers_callback).
        """
        from dapr.clients import DaprClient

        set_sdk_settings(DAPR_HTTP_PORT=self.http_port, DAPR_GRPC_PORT=self.grpc_port,
                         DAPR_RUNTIME_HOST="127.0.0.1", DAPR_HTTP_ENDPOINT=None, DAPR_GRPC_ENDPOINT=None)
        if not headers:
            return DaprClient(address=f"127.0.0.1:{self.grpc_port}")
        return DaprClient(address=f"127.0.0.1:{self.grpc_port}", headers_callback=lambda: dict(headers),
                          interceptors=[_Metadata(headers)])

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def wait_ready(self, timeout: float = 30.0, path: str = "/v1.0/healthz") -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"sidecar {self.app_id} exited: {self.log_path.read_text()[-3000:]}")
            try:
                return httpx.get(self.http + path, timeout=1).status_code == 204
            except httpx.HTTPError:
                return False
        wait_until(ready, timeout, 0.05, f"sidecar {self.app_id} {path}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


class _Metadata(grpc.UnaryUnaryClientInterceptor):
    """Adds fixed metadata to every unary gRPC call (what the services' trace interceptor does)."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = list(headers.items())

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(details._replace(metadata=[*(details.metadata or []), *self.headers]), request)


@dataclass
class Sandbox:
    """Shared paths for a group of sidecars: resources, state dir, registry and secrets files."""

    root: Path
    bootstrap: str
    resources: Path
    registry: Path
    secrets: Path
    state_dir: Path
    sidecars: list[Sidecar] = field(default_factory=list)

    def register(self, app_id: str, app_port: int, http_port: int | None = None, grpc_port: int | None = None) -> None:
        data = json.loads(self.registry.read_text() or "{}") if self.registry.exists() else {}
        data[app_id] = {"app_port": app_port, "dapr_http_port": http_port, "dapr_grpc_port": grpc_port}
        tmp = self.registry.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.registry)

    def start(self, app_id: str, app_port: int | None, *, wait: bool = True, extra: list[str] | None = None,
              http_port: int | None = None, grpc_port: int | None = None,
              bootstrap: str | None = None) -> Sidecar:
        http_port, grpc_port = http_port or free_port(), grpc_port or free_port()
        argv = [sys.executable, "-m", "console.sandbox.sidecar", "--app-id", app_id,
                "--dapr-http-port", str(http_port), "--dapr-grpc-port", str(grpc_port),
                "--resources-path", str(self.resources), "--state-dir", str(self.state_dir),
                "--kafka-bootstrap", bootstrap or self.bootstrap, "--secrets-file", str(self.secrets),
                "--registry", str(self.registry), *(extra or [])]
        if app_port is not None:
            argv += ["--app-port", str(app_port)]
            self.register(app_id, app_port, http_port, grpc_port)
        log_path = self.root / f"{app_id}-{uuid.uuid4().hex[:6]}-dapr.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 (outlives this function: closed by its owner)
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        sidecar = Sidecar(app_id, http_port, grpc_port, process, log_path, argv)
        self.sidecars.append(sidecar)
        if wait:
            sidecar.wait_ready()
        return sidecar

    def stop_all(self) -> None:
        """SIGTERM all at once, then wait: shutdowns overlap instead of adding up."""
        for sidecar in self.sidecars:
            if sidecar.process.poll() is None:
                sidecar.process.terminate()
        for sidecar in self.sidecars:
            sidecar.stop()


def write_resources(root: Path, docs: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def make_sandbox(root: Path, bootstrap: str, docs: dict[str, str], secrets: dict[str, Any] | None = None) -> Sandbox:
    sb = Sandbox(root, bootstrap, write_resources(root / "resources", docs), root / "registry.json",
                 root / "secrets.json", root / "state")
    sb.secrets.write_text(json.dumps(secrets or {}))
    sb.registry.write_text("{}")
    return sb




# ---- the shared sandbox's resources: topics, components, resiliency, subscriptions ------------------
RUN = uuid.uuid4().hex[:6]
T = {name: f"{name}-{RUN}" for name in (
    "ok", "ok-dlq", "fail", "fail-dlq", "retry", "retry-dlq", "drop", "drop-dlq", "nf", "nf-dlq", "nodlq",
    "raw", "order", "prog", "rules", "pub")}
PARTITIONS = {T["order"]: 3, T["pub"]: 3}


def _subscription(name: str, topic: str, route: str, dlq: str | None = None, extra: str = "") -> str:
    dlq_line = f"\n          deadLetterTopic: {T[dlq]}" if dlq else ""
    return f"""
        apiVersion: dapr.io/v2alpha1
        kind: Subscription
        metadata: {{name: {name}}}
        spec:
          pubsubname: kafka-pubsub
          topic: {T[topic]}
          routes:
            default: {route}{extra}{dlq_line}
        scopes: [worker]
        """


def kafka_pubsub_component(*metadata: str) -> str:
    """A `kafka-pubsub` Component for a test sandbox: consumerGroup "{appID}" (as in kustomize/base),
    then `metadata` items, each a YAML flow mapping like '{name: initialOffset, value: oldest}'."""
    items = "".join(f"\n  - {item}" for item in ('{name: consumerGroup, value: "{appID}"}', *metadata))
    return ("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: kafka-pubsub}\n"
            "spec:\n  type: pubsub.kafka\n  version: v1\n  metadata:" + items + "\n")


BASE_DOCS = {
    "components.yaml": """
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: kafka-pubsub, namespace: todo-app}
        spec:
          type: pubsub.kafka
          version: v1
          metadata:
            - {name: brokers, value: "todo-kafka-kafka-bootstrap.kafka.svc:9092"}
            - {name: consumerGroup, value: "{appID}"}
            - {name: authType, value: none}
        ---
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: statestore}
        spec:
          type: state.postgresql
          version: v2
          metadata:
            - name: connectionString
              secretKeyRef: {name: postgres, key: url}
        ---
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: secretstore}
        spec: {type: secretstores.kubernetes, version: v1}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: not-dapr}
        data: {a: b}
        """,
    "resiliency.yaml": """
        apiVersion: dapr.io/v1alpha1
        kind: Resiliency
        metadata: {name: todo-resiliency}
        spec:
          policies:
            timeouts:
              quick: 1s
            retries:
              inbound: {policy: constant, duration: 50ms, maxRetries: 2}
              outbound: {policy: constant, duration: 100ms, maxRetries: 2}
              app: {policy: constant, duration: 20ms, maxRetries: 2}
              appcodes:
                policy: constant
                duration: 20ms
                maxRetries: 2
                matching: {httpStatusCodes: "502-504"}
            circuitBreakers:
              appcb: {maxRequests: 1, timeout: 2s, trip: consecutiveFailures >= 6}
          targets:
            apps:
              flaky: {retry: app, circuitBreaker: appcb}
              picky: {retry: appcodes}
              slow: {timeout: quick}
            components:
              kafka-pubsub:
                inbound: {retry: inbound}
                outbound: {retry: outbound, timeout: quick}
        """,
    "subscriptions.yaml": "---".join([
        _subscription("worker-ok", "ok", "/events/ok", "ok-dlq"),
        _subscription("worker-fail", "fail", "/events/fail", "fail-dlq"),
        _subscription("worker-retry", "retry", "/events/retry", "retry-dlq"),
        _subscription("worker-drop", "drop", "/events/drop", "drop-dlq"),
        _subscription("worker-nf", "nf", "/events/missing", "nf-dlq"),
        _subscription("worker-nodlq", "nodlq", "/events/nodlq"),
        _subscription("worker-raw", "raw", "/events/raw", extra="\n          metadata: {rawPayload: \"true\"}"),
        _subscription("worker-order", "order", "/events/order"),
        _subscription("worker-rules", "rules", "/events/rules",
                      extra="\n            rules:\n              - {match: 'event.type == \"special\"', path: /events/special}"),
        """
        apiVersion: dapr.io/v2alpha1
        kind: Subscription
        metadata: {name: audit-only}
        spec:
          pubsubname: kafka-pubsub
          topic: not-for-worker
          routes: {default: /events/audit}
        scopes: [audit]
        """,
    ]),
}
SECRETS = {"postgres": {"url": "postgresql://todo@db/todo", "password": "s3cret"}, "jwt": {"key": "k"}}
