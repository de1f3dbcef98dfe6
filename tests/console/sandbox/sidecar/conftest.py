"""Fixtures for the dev sidecar's conformance tests: one broker and one sandbox for this package,
stopped when its tests are done (idle sidecars poll the broker, which would load the rest of the suite).

Everything is real: a tansu broker (KAFKA_BOOTSTRAP points at another broker instead), the
sidecar as a subprocess (`python -m console.sandbox.sidecar`), the official Dapr SDK as the
client, and small stdlib HTTP apps standing in for services. Resources (Component, Subscription,
Resiliency YAML) are written to a temporary directory, independent of kustomize/base.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from console.sandbox.broker import Broker, external_broker, start_tansu
from tests.utils.kafka_topics import create_topics, require_tansu
from tests.utils.sidecars import Sandbox, Sidecar, make_sandbox
from tests.utils.stub_apps import StubApp, start_app

from .shared_resources import BASE_DOCS, PARTITIONS, ROUTED, SECRETS, T


@pytest.fixture(scope="package")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    require_tansu()
    if os.environ.get("KAFKA_BOOTSTRAP"):
        yield external_broker(os.environ["KAFKA_BOOTSTRAP"])
        return
    b = start_tansu(tmp_path_factory.mktemp("sidecar-broker"))
    yield b
    b.stop()


@pytest.fixture(scope="package")
def sandbox(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    create_topics(broker.bootstrap, {t: PARTITIONS.get(t, 1) for t in T.values()})
    sb = make_sandbox(tmp_path_factory.mktemp("sidecar-sandbox"), broker.bootstrap, BASE_DOCS, SECRETS)
    yield sb
    sb.stop_all()


@pytest.fixture(scope="package")
def worker_app() -> Iterator[StubApp]:
    """The subscribing app; tests replace routes they need to behave differently."""
    app = start_app({
        "/dapr/subscribe": (200, [
            {"pubsubname": "kafka-pubsub", "topic": T["prog"], "route": "/events/prog"},
            # CEL route rules: refused, not started (test_refusals.py)
            {"pubsubname": "kafka-pubsub", "topic": ROUTED,
             "routes": {"rules": [{"match": 'event.type == "x"', "path": "/x"}], "default": "/events/prog"}}]),
        "/events/ok": (200, b""),
        "/events/fail": (500, b"boom"),
        "/events/drop": (200, {"status": "DROP"}),
        "/events/raw": (200, {"status": "SUCCESS"}),
        "/events/order": (200, {"status": "SUCCESS"}),
        "/events/prog": (200, {"status": "SUCCESS"}),
        "/echo": lambda r: (200, {"method": r.method, "path": r.path, "body": r.body.decode(),
                                  "headers": r.headers}, {"x-callee": "worker"}),
        "/teapot": (418, b"short and stout", {"x-callee": "worker"}),
    })
    yield app
    app.stop()


@pytest.fixture(scope="package")
def backend_app() -> Iterator[StubApp]:
    app = start_app({})
    yield app
    app.stop()


@pytest.fixture(scope="package")
def worker(sandbox: Sandbox, worker_app: StubApp) -> Sidecar:
    return sandbox.start("worker", worker_app.port)


@pytest.fixture(scope="package")
def backend(sandbox: Sandbox, backend_app: StubApp) -> Sidecar:
    return sandbox.start("backend", backend_app.port)


@pytest.fixture
def backend_client(backend: Sidecar) -> Iterator[Any]:
    client = backend.client()
    yield client
    client.close()
