"""Run services for real behind the dev sidecar: uvicorn on a port, `python -m console.sandbox.sidecar`
next to it reading the resources of kustomize/base (the broker is the suite's `kafka_broker`).

Nothing of our own code is replaced: the service's DaprGateway talks gRPC to the sidecar, the
sidecar invokes other apps over HTTP, fires jobs with POST /job/<name> and delivers Kafka
messages to the Subscriptions' routes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from console.sandbox.ports import free_port
from services.backend.main import build_app as build_backend
from services.platform.events import CloudEvent
from tests.services.backend.conftest import make_settings as backend_settings
from tests.utils.sidecars import PRODUCT_RESOURCES, Sandbox, Sidecar, make_sandbox
from tests.utils.waiting import wait_until

BASE = PRODUCT_RESOURCES  # the manifests the mesh's sidecars read (tests also create their topics from it)
INTERNAL_TOKEN = "internal-token-for-consumer-tests-0123456789"


@dataclass
class ServedApp:
    app: FastAPI
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[ServedApp]:
    """The app on 127.0.0.1:<port> in a thread, with its lifespan, until the block ends."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on",
                                           ws_ping_interval=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 15, 0.05, f"app on port {port}")
    if not server.started:
        pytest.fail(f"app on port {port} did not start")
    try:
        yield ServedApp(app, port, server, thread)
    finally:
        server.should_exit = True
        thread.join(15)


@dataclass(frozen=True)
class Publisher:
    """Publishes our CloudEvents through a sidecar's HTTP API, as the backend's relay would.

    Test tooling, deliberately not a DaprGateway: the SDK keeps the sidecar's HTTP port in a
    process-wide setting, so a second gateway in the test process would redirect the services'
    own HTTP invocations to this sidecar.
    """

    sidecar_url: str

    def publish(self, topic: str, event: CloudEvent) -> None:
        answer = httpx.post(
            f"{self.sidecar_url}/v1.0/publish/kafka-pubsub/{topic}", params={"metadata.partitionKey": event.subject},
            content=event.model_dump_json(exclude_none=True), timeout=15,
            headers={"content-type": "application/cloudevents+json"})
        assert answer.status_code == 204, answer.text


@dataclass
class Mesh:
    """Sidecars sharing one state store, registry and secrets file, as the sandbox runs them."""

    sandbox: Sandbox
    sidecars: dict[str, Sidecar] = field(default_factory=dict)

    def sidecar(self, app_id: str, ports: Ports) -> Sidecar:
        """A sidecar for app_id (reads kustomize/base: its components, Subscriptions, Resiliency)."""
        return self.sandbox.start(app_id, ports.app, http_port=ports.dapr_http, grpc_port=ports.dapr_grpc)

    def publisher(self) -> Publisher:
        """A sidecar for app-id `backend` (no app), the only app allowed to publish the main topics
        (publishingScopes of the kafka-pubsub component)."""
        ports = Ports()
        started = self.sandbox.start("backend", None, http_port=ports.dapr_http, grpc_port=ports.dapr_grpc)
        return Publisher(started.http)

    def register(self, app_id: str, app_port: int) -> None:
        """Make app_id resolvable for service invocation without running its sidecar."""
        self.sandbox.register(app_id, app_port)

    @contextmanager
    def backend(self, database: Path, *, relaying: bool = False) -> Iterator[ServedApp]:
        """The real backend app (SQLite, the internal token), reachable by invocation as `backend`.

        With `relaying`, it runs as in the sandbox: its own sidecar, through which its outbox relay
        publishes what the API writes; without, nothing it writes leaves its outbox."""
        url = f"sqlite:///{database}"
        if not relaying:
            with serve(build_backend(backend_settings(url, internal_api_token=INTERNAL_TOKEN))) as served:
                self.register("backend", served.port)
                yield served
            return
        ports = Ports()
        app = build_backend(backend_settings(url, internal_api_token=INTERNAL_TOKEN, relay_enabled=True,
                                             relay_poll_interval_s=0.2, **ports.settings()))
        with serve(app, ports.app) as served:
            self.sidecar("backend", ports)
            yield served


@contextmanager
def mesh(root: Path, bootstrap: str, secrets: dict[str, dict[str, str]] | None = None) -> Iterator[Mesh]:
    sandbox = make_sandbox(root, bootstrap, secrets={"todo-internal": {"token": INTERNAL_TOKEN}, **(secrets or {})},
                           resources=BASE)
    try:
        yield Mesh(sandbox)
    finally:
        sandbox.stop_all()


@dataclass(frozen=True)
class Ports:
    """An app's port and its sidecar's, chosen up front: the app's settings name the sidecar's."""

    app: int = field(default_factory=free_port)
    dapr_http: int = field(default_factory=free_port)
    dapr_grpc: int = field(default_factory=free_port)

    def settings(self) -> PortSettings:
        return {"port": self.app, "dapr_http_port": self.dapr_http, "dapr_grpc_port": self.dapr_grpc}


class PortSettings(TypedDict):
    """The ServiceSettings fields that `Ports` fills in (typed, so `Settings(**ports.settings())` checks)."""

    port: int
    dapr_http_port: int
    dapr_grpc_port: int

