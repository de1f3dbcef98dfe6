"""Our Dapr gateway against the real dev sidecar (wired by kustomize/base) and the real broker.

The sidecar's own conformance suite proves it behaves like daprd for the official SDK; this
proves our wrapper uses the SDK right: etags, secrets, invocation with trace headers, jobs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from console.sandbox.broker import Broker
from services.platform import correlation
from services.platform.dapr_gateway import DaprCallError, DaprGateway, DaprUnavailable
from services.platform.settings import ServiceSettings
from tests.utils.dapr_sdk import sdk_settings
from tests.utils.sidecars import PRODUCT_RESOURCES, Sandbox, Sidecar, make_sandbox
from tests.utils.stub_apps import StubApp, start_app

SECRETS = {"todo-db": {"url": "postgresql://todo@db/todo"}, "todo-internal": {"token": "internal-token"}}
BOOT_SECRET = "jwt-secret-from-the-store-0123456789abcdef"
pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def sandbox(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = make_sandbox(tmp_path_factory.mktemp("gateway"), kafka_broker.bootstrap, secrets=SECRETS,
                      resources=PRODUCT_RESOURCES)
    yield sb
    sb.stop_all()


@pytest.fixture(scope="module")
def apps(sandbox: Sandbox) -> Iterator[tuple[StubApp, StubApp, Sidecar]]:
    """`worker` (the caller, with its sidecar) and `backend` (the callee app, with its sidecar)."""
    callee = start_app({"/internal/echo": lambda r: (201, {"headers": r.headers, "body": r.body.decode()}),
                        "/internal/missing": (404, {"detail": "nope"})})
    caller = start_app({"/job/reminder-t1": (200, b"")})
    sandbox.start("backend", callee.port)
    worker_sidecar = sandbox.start("worker", caller.port)
    yield caller, callee, worker_sidecar
    caller.stop()
    callee.stop()


def gateway_for(sidecar: Sidecar) -> DaprGateway:
    return DaprGateway(ServiceSettings(service_name=sidecar.app_id, app_env="development",
                                       dapr_http_port=sidecar.http_port, dapr_grpc_port=sidecar.grpc_port))


def test_state_with_first_write_etags(apps: tuple[StubApp, StubApp, Sidecar]) -> None:
    gateway = gateway_for(apps[2])

    async def scenario() -> None:
        assert await gateway.get_state("missing-key") is None
        await gateway.save_state("recur:e1", "done", first_write=True)
        entry = await gateway.get_state("recur:e1")
        assert entry is not None
        assert entry.value == b"done"
        assert entry.etag
        await gateway.save_state("recur:e1", "again", etag=entry.etag, first_write=True)
        with pytest.raises(DaprCallError):  # a stale etag loses: this is how replicas dedupe
            await gateway.save_state("recur:e1", "third", etag=entry.etag, first_write=True)
        await gateway.delete_state("recur:e1")
        assert await gateway.get_state("recur:e1") is None

    asyncio.run(scenario())
    gateway.close()


def test_secrets_come_through_the_secret_store(apps: tuple[StubApp, StubApp, Sidecar]) -> None:
    gateway = gateway_for(apps[2])  # the worker: its Role (kustomize/base/worker-role.yaml) names todo-internal only
    assert gateway.get_secret_blocking("todo-internal", "token") == "internal-token"
    with pytest.raises(DaprCallError):
        gateway.get_secret_blocking("todo-internal", "password")
    with pytest.raises(DaprCallError, match="forbidden"):
        gateway.get_secret_blocking("todo-db", "url")
    with pytest.raises(DaprCallError):
        gateway.get_secret_blocking("no-such-secret", "url")
    gateway.close()


def test_invoke_carries_the_correlation_id_and_returns_the_callees_answer(
        apps: tuple[StubApp, StubApp, Sidecar]) -> None:
    gateway = gateway_for(apps[2])
    ctx = correlation.from_headers("corr-77", None)

    async def scenario() -> None:
        token = correlation.bind(ctx)
        try:
            ok = await gateway.invoke("backend", "internal/echo", verb="POST", body={"n": 1},
                                      headers={"X-Internal-Token": "t"})
            missing = await gateway.invoke("backend", "internal/missing", verb="POST")
        finally:
            correlation.reset(token)
        assert ok.status == 201
        echoed = ok.json()
        assert echoed["headers"]["x-correlation-id"] == "corr-77"
        assert echoed["headers"]["traceparent"].split("-")[1] == ctx.traceparent.split("-")[1]
        assert echoed["headers"]["x-internal-token"] == "t"
        assert json.loads(echoed["body"]) == {"n": 1}
        assert missing.status == 404
        assert missing.json() == {"detail": "nope"}
        with pytest.raises(DaprUnavailable):  # daprd cannot resolve the app-id: retry later
            await gateway.invoke("no-such-app", "anything")

    asyncio.run(scenario())
    gateway.close()


def test_a_scheduled_job_fires_on_the_app_with_its_data(apps: tuple[StubApp, StubApp, Sidecar]) -> None:
    caller, _, sidecar = apps
    gateway = gateway_for(sidecar)
    asyncio.run(gateway.schedule_job("reminder-t1", due_time="1s", data={"task_id": "t1", "version": 3}))
    fired = caller.wait_calls("/job/reminder-t1", 1, timeout=15)[0]
    body = fired.json()
    # daprd delivers the job's data to HTTP apps; our payload is inside it, whatever the wrapping.
    assert "t1" in json.dumps(body)
    asyncio.run(gateway.delete_job("reminder-t1"))
    gateway.close()


def test_an_unreachable_sidecar_is_unavailable_not_an_error() -> None:
    gateway = DaprGateway(ServiceSettings(app_env="development", dapr_http_port=1, dapr_grpc_port=2))
    with pytest.raises(DaprUnavailable):
        asyncio.run(gateway.get_state("k"))
    assert asyncio.run(gateway.ready()) is False


def test_a_call_the_sidecar_never_answers_ends_at_the_gateways_deadline() -> None:
    """The relay must get control back while daprd's outbound retries hold a publish (Kafka down): a
    sidecar that is healthy but never answers PublishEvent gives DaprUnavailable, not a call without end.
    The deadline is the gateway's own, whatever the SDK's process-wide DAPR_API_TIMEOUT_SECONDS says by
    then (another gateway or test in the process may have changed it; without one, the SDK's asyncio
    client sends publish_event with no deadline at all)."""
    import grpc
    from dapr.proto.runtime.v1 import dapr_pb2_grpc

    class Stalled(dapr_pb2_grpc.DaprServicer):
        async def PublishEvent(self, request: object, context: object) -> None:
            await asyncio.Event().wait()

    health = start_app({"/v1.0/healthz/outbound": (204, b""), "/v1.0/healthz": (204, b"")})

    async def scenario() -> DaprUnavailable:
        server = grpc.aio.server()
        dapr_pb2_grpc.add_DaprServicer_to_server(Stalled(), server)
        grpc_port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        gateway = DaprGateway(ServiceSettings(service_name="backend", app_env="development", dapr_timeout_s=1,
                                              dapr_http_port=health.port, dapr_grpc_port=grpc_port))
        try:
            with sdk_settings(DAPR_API_TIMEOUT_SECONDS=None), pytest.raises(DaprUnavailable) as raised:
                # 30 s is only the test's own guard: without a deadline the call never ends
                await asyncio.wait_for(gateway.publish("task-events", b"{}"), 30)
            return raised.value
        finally:
            await gateway.aclose()
            await server.stop(None)

    try:
        error = asyncio.run(scenario())
    finally:
        health.stop()
    assert str(error).startswith("publish: "), error


def test_backend_reads_its_secrets_through_the_sidecar(sandbox: Sandbox, tmp_path: Path) -> None:
    """SECRET_SOURCE=dapr: DB URL, JWT secret and internal token come from the secret store."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from services.backend.config import BackendSettings
    from services.backend.main import build_app
    from services.platform.auth import mint_dev_token

    db_file = tmp_path / "from-secret.db"
    secrets = json.loads(sandbox.secrets.read_text())
    secrets.update({"todo-db": {"url": f"sqlite:///{db_file}"}, "todo-auth": {"jwt-secret": BOOT_SECRET},
                    "todo-internal": {"token": "internal-from-the-store"}})
    sandbox.secrets.write_text(json.dumps(secrets))
    callee = start_app({})
    sidecar = sandbox.start("backend", callee.port)
    settings = BackendSettings(app_env="development", secret_source="dapr", auth_dev_mode=True,
                               relay_enabled=False, dapr_http_port=sidecar.http_port,
                               dapr_grpc_port=sidecar.grpc_port)
    assert settings.jwt_secret is None  # nothing from the environment
    with TestClient(build_app(settings)) as client:
        token = mint_dev_token(BOOT_SECRET, "alice")
        created = client.post("/api/tasks", json={"title": "x"}, headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201
        assert cast(FastAPI, client.app).state.settings.internal_api_token == "internal-from-the-store"
    assert db_file.exists()
    sidecar.stop()
    callee.stop()


def test_readiness_probes_do_not_rebuild_a_tls_context_each_time(
        apps: tuple[StubApp, StubApp, Sidecar], monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: each probe built httpx's default TLS context (~27 ms of CPU loading the CA bundle)
    on the event loop, which under load stalled every request in flight behind `/readyz`."""
    import ssl

    built: list[object] = []
    real = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        built.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    gateway = gateway_for(apps[2])

    async def probes() -> list[bool]:
        return [await gateway.ready(outbound=n % 2 == 1) for n in range(10)]

    assert asyncio.run(probes()) == [True] * 10
    assert len(built) <= 1, f"{len(built)} TLS contexts built for 10 probes"
