"""The sandbox's service list, and how each service and its dev sidecar are started.

This is the one place that knows the app-ids and the runtime contract (commands, ports,
environment). It turns them into a `Plan` the supervisor executes; nothing here starts a process.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from console.sandbox import postgres
from console.sandbox.layout import REPO_ROOT, SandboxLayout
from console.sandbox.plan import BrokerSpec, Plan, ProcessSpec
from console.sandbox.ports import free_port, port_is_free

log = logging.getLogger(__name__)

# Start order matters only for readability of logs: every process is started at once.
SERVICES: tuple[str, ...] = ("backend", "worker", "notification", "websocket", "audit", "frontend")
# The services with a database, and its name on the sandbox's PostgreSQL (the cluster's todo-db and
# todo-audit-db Secrets name theirs).
DATABASE_NAMES: dict[str, str] = {"backend": "todo", "audit": "audit"}
DATABASE_KINDS = ("sqlite", "postgres")
SIDECAR_MODULE = "console.sandbox.sidecar"
SIDECAR_SUFFIX = "-dapr"
MANIFESTS_DIR = REPO_ROOT / "kustomize" / "base"
# With a port base, service i gets base+10*i (app), +1 (dapr http), +2 (dapr grpc).
PORT_STRIDE = 10
BROKER_OFFSET, S3_OFFSET, DATABASE_OFFSET = 90, 91, 92
# The sidecars' Kafka client tuning per broker mode, as environment variables the sidecar reads.
# SIDECAR_FETCH_MAX_WAIT_MS: tansu answers a fetch only when its wait is over, even when it found
# records at once (tansu-storage/src/service/fetch.rs): it checks storage, then sleeps half the
# remaining wait when 250 ms or more remain, else all of it, and answers after the sleep if it found
# anything. Under 250 ms every fetch therefore takes the whole wait (records arriving meanwhile wait
# for the next one: W to 2W); from 250 ms a fetch that finds records answers after W/2. So 250 ms
# delivers a steady flow 125-250 ms after publishing (25 ms: 25-50 ms, 200 ms: 200-400 ms) and an
# idle consumer costs tansu 3 storage checks a quarter second: the idle sandbox spent 13-14 % of a
# core in tansu at 25 ms, 3 % at 250 ms.
# On s3:// the wait also bounds a fetch's storage work, not only its idle wait: each partition
# fetched costs object-store round trips (its watermark, a LIST of the partition, a GET per stored
# batch) and what does not fit in the wait is left for the next fetch: at 25 ms a kafka-python
# consumer read 57 records/s from the durable broker (1.5 records a fetch), at 500 ms 530/s (95 a
# fetch). 500 ms is librdkafka's default fetch.wait.max.ms. daprd's Kafka client, sarama, waits 250 ms
# (NewConfig: Consumer.MaxWaitTime = 250 * time.Millisecond; components-contrib leaves it), the memory
# mode's value.
# SIDECAR_PRODUCER_MAX_IN_FLIGHT: on s3:// tansu writes each partition batch of a produce request as
# two conditional PUTs, one after the other, so a request takes tens of milliseconds. With librdkafka's
# default (any number of requests in flight) the backend's sidecar sent each of the relay's 16
# concurrent publishes as its own request, one record each, and the broker fell behind (the delivery
# benchmark: 32 events/s delivered, 22.7 s drain after the last write). One request in flight: the
# records published meanwhile wait in librdkafka and leave together in the next request, with no delay
# when there is no queue (same benchmark: drained 0.4 s after the last write, e2e p50 1.0 s against
# 20.7 s; load average 9-11). memory:// keeps the defaults.
KAFKA_TUNING: dict[str, dict[str, str]] = {
    "memory": {"SIDECAR_FETCH_MAX_WAIT_MS": "250"},
    "durable": {"SIDECAR_FETCH_MAX_WAIT_MS": "500", "SIDECAR_PRODUCER_MAX_IN_FLIGHT": "1"},
}


class PlanError(ValueError):
    """The sandbox cannot be planned (a port in use, a missing part); one line for the user."""


@dataclass(frozen=True)
class ServicePorts:
    app: int
    dapr_http: int
    dapr_grpc: int


def present_services(repo: Path = REPO_ROOT, names: Iterable[str] = SERVICES) -> tuple[list[str], list[str]]:
    """(present, absent): a service is present when `services/<name>/main.py` exists."""
    present: list[str] = []
    absent: list[str] = []
    for name in names:
        (present if (repo / "services" / name / "main.py").is_file() else absent).append(name)
    return present, absent


def sidecar_present(repo: Path = REPO_ROOT) -> bool:
    pkg = repo.joinpath(*SIDECAR_MODULE.split("."))
    return (pkg / "__main__.py").is_file()


class PortAllocator:
    """Fixed ports from a base (stable URLs), or random free ports when the base is 0."""

    def __init__(self, base: int = 0) -> None:
        self.base = base

    def take(self, offset: int, what: str) -> int:
        if not self.base:
            return free_port()  # never the same port twice
        port = self.base + offset
        if not port_is_free(port):
            raise PlanError(f"port {port} ({what}) is in use; choose another --port-base or stop its owner")
        return port

    def service(self, index: int, name: str) -> ServicePorts:
        at = index * PORT_STRIDE
        return ServicePorts(
            self.take(at, name), self.take(at + 1, f"{name} dapr http"), self.take(at + 2, f"{name} dapr grpc")
        )


def database_urls(layout: SandboxLayout, *, external: str | None = None,
                  postgres_port: int | None = None) -> dict[str, str]:
    """Each database service's URL: one external DATABASE_URL for all, the sandbox's own PostgreSQL
    (one database each, as in the cluster), or a SQLite file each in the sandbox directory."""
    if external:
        return dict.fromkeys(DATABASE_NAMES, external)
    if postgres_port:
        return {name: postgres.url(postgres_port, db) for name, db in DATABASE_NAMES.items()}
    return {name: layout.sqlite_url(name) for name in DATABASE_NAMES}


def database_process(cluster: postgres.Cluster, port: int) -> ProcessSpec:
    """The sandbox's PostgreSQL, supervised like the services: ready once it accepts a session."""
    ready = postgres.url(port, "postgres")
    return ProcessSpec(
        name="postgres",
        argv=cluster.server_argv(port),
        cwd=str(cluster.data.parent),
        port=port,
        ready_url=ready,
        kind="database",
        liveness_url=ready,
        user=postgres.os_user(),
        stop_signal=postgres.STOP_SIGNAL.name,
    )


def service_process(
    name: str, ports: ServicePorts, layout: SandboxLayout, *, database_url: str | None, jwt_secret: str,
    log_level: str = "info",
) -> ProcessSpec:
    """A service as the runtime contract starts it: uvicorn on loopback, Dapr ports in env."""
    env = {
        "SERVICE_NAME": name,
        "PORT": str(ports.app),
        "APP_ENV": "development",
        "LOG_LEVEL": log_level.lower(),
        "SECRET_SOURCE": "dapr",
        "DAPR_HTTP_PORT": str(ports.dapr_http),
        "DAPR_GRPC_PORT": str(ports.dapr_grpc),
        "PUBSUB_NAME": "kafka-pubsub",
        "STATESTORE_NAME": "statestore",
        "SECRETSTORE_NAME": "secretstore",
        "AUTH_DEV_MODE": "true",
        "JWT_SECRET": jwt_secret,
        "PYTHONUNBUFFERED": "1",
        **service_tuning(name),
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    return ProcessSpec(
        name=name,
        argv=[
            sys.executable, "-m", "uvicorn", f"services.{name}.main:app",
            "--host", "127.0.0.1", "--port", str(ports.app), "--log-level", log_level.lower(),
        ],
        env=env,
        cwd=str(REPO_ROOT),
        port=ports.app,
        ready_url=f"http://127.0.0.1:{ports.app}/readyz",
        ready_status=200,
        kind="service",
        app_id=name,
        # The services read their secrets through the sidecar while starting: start them once it serves.
        start_after_url=f"http://127.0.0.1:{ports.dapr_http}/v1.0/healthz/outbound",
        liveness_url=f"http://127.0.0.1:{ports.app}/healthz",
        metrics_url=f"http://127.0.0.1:{ports.app}/metrics",
    )


# What a service runs with in the sandbox beyond its defaults, and why. The backend's outbox relay wakes
# at once for rows its own process commits; its poll (RELAY_POLL_INTERVAL_S, 1 s, what the cluster runs)
# is for rows another replica committed, as the cluster's HPA runs several backends and only the lease
# holder publishes. The sandbox runs one backend, so its poll only finds what a commit already announced:
# every second that was a query (and a thread hop) costing an idle backend about 0.3 % of a core, twice
# what any other service spends idle (issue 16). Every 5 s it still renews the relay lease in time
# (15 s TTL, renewed once a third of it has passed).
SERVICE_TUNING: dict[str, dict[str, str]] = {"backend": {"RELAY_POLL_INTERVAL_S": "5"}}


def service_tuning(name: str) -> dict[str, str]:
    """The sandbox's settings for service `name` (see SERVICE_TUNING); one set in the environment wins."""
    return {key: value for key, value in SERVICE_TUNING.get(name, {}).items() if key not in os.environ}


def kafka_tuning(broker_mode: str) -> dict[str, str]:
    """The sidecars' Kafka tuning for this broker mode (none for an external Kafka: the sidecar's
    defaults); a variable already set in the environment wins, for tuning by hand."""
    return {name: value for name, value in KAFKA_TUNING.get(broker_mode, {}).items() if name not in os.environ}


def sidecar_process(
    name: str, ports: ServicePorts, layout: SandboxLayout, *, bootstrap: str, manifests: Path,
    database_url: str | None, start_after_url: str | None = None, kafka_env: dict[str, str] | None = None,
) -> ProcessSpec:
    """The dev sidecar with the flags of the runtime contract; ready when /v1.0/healthz is 204.

    `database_url` holds its state store (SQLite under --state-dir without it); `start_after_url`
    is the database it waits for; `kafka_env` its Kafka client tuning (see KAFKA_TUNING)."""
    argv = [
        sys.executable, "-m", SIDECAR_MODULE,
        "--app-id", name,
        "--app-port", str(ports.app),
        "--dapr-http-port", str(ports.dapr_http),
        "--dapr-grpc-port", str(ports.dapr_grpc),
        "--resources-path", str(manifests),
        "--state-dir", str(layout.sidecar_state),
        "--kafka-bootstrap", bootstrap,
        "--secrets-file", str(layout.secrets),
        "--registry", str(layout.registry),
    ]
    if database_url:
        argv += ["--database-url", database_url]
    return ProcessSpec(
        name=name + SIDECAR_SUFFIX,
        argv=argv,
        env={"PYTHONUNBUFFERED": "1", **(kafka_env or {})},
        cwd=str(REPO_ROOT),
        port=ports.dapr_http,
        extra_ports=[ports.dapr_grpc],
        ready_url=f"http://127.0.0.1:{ports.dapr_http}/v1.0/healthz",
        ready_status=204,
        kind="sidecar",
        app_id=name,
        start_after_url=start_after_url,
        liveness_url=f"http://127.0.0.1:{ports.dapr_http}/v1.0/healthz/outbound",  # not tied to the app
    )


def registry(ports: dict[str, ServicePorts]) -> dict[str, dict[str, int]]:
    """The app-id -> ports map the sidecars use for service invocation."""
    return {
        name: {"app_port": p.app, "dapr_http_port": p.dapr_http, "dapr_grpc_port": p.dapr_grpc}
        for name, p in ports.items()
    }


def urls(ports: dict[str, ServicePorts]) -> dict[str, str]:
    """What `up` prints: the API, the websocket endpoint and each service."""
    out: dict[str, str] = {}
    if "frontend" in ports:
        out["web"] = f"http://127.0.0.1:{ports['frontend'].app}/"
    if "backend" in ports:
        out["api"] = f"http://127.0.0.1:{ports['backend'].app}/api"
    if "websocket" in ports:
        out["ws"] = f"ws://127.0.0.1:{ports['websocket'].app}/ws"
    for name, p in ports.items():
        out[name] = f"http://127.0.0.1:{p.app}"
    return out


def build_plan(
    layout: SandboxLayout,
    *,
    services: list[str],
    absent: list[str],
    broker: BrokerSpec,
    allocator: PortAllocator,
    jwt_secret: str,
    databases: dict[str, str],
    database: ProcessSpec | None = None,
    manifests: Path = MANIFESTS_DIR,
    log_level: str = "info",
) -> tuple[Plan, dict[str, ServicePorts]]:
    """Ports for every present service and its sidecar, then the processes to run them.

    `databases` maps each database service to its URL; `database` is the sandbox's own PostgreSQL,
    if it runs one. The sidecars keep their state in the backend's database (the cluster's
    statestore uses todo-db) unless that is SQLite."""
    ports = {name: allocator.service(SERVICES.index(name), name) for name in services}
    state_store = databases["backend"] if not databases["backend"].startswith("sqlite") else None
    processes: list[ProcessSpec] = [database] if database else []
    for name in services:
        processes.append(
            sidecar_process(
                name, ports[name], layout, bootstrap=broker.bootstrap, manifests=manifests,
                database_url=state_store, start_after_url=database.ready_url if database else None,
                kafka_env=kafka_tuning(broker.mode),
            )
        )
        processes.append(
            service_process(name, ports[name], layout, database_url=databases.get(name), jwt_secret=jwt_secret,
                            log_level=log_level)
        )
    plan = Plan(
        dir=str(layout.root),
        broker=broker,
        processes=processes,
        manifests_path=str(manifests),
        urls=urls(ports),
        databases={name: url for name, url in databases.items() if name in services},
        absent=absent,
    )
    return plan, ports
