"""What the supervisor runs, as data: processes, broker, topics source and restart policy.

`up` builds a plan (ports, commands, environment) and writes it to `<dir>/plan.json`; the
detached supervisor only executes it. Keeping the plan as data is what lets the tests inject
tiny fixture processes instead of the real services, and lets `status` show the same ports the
processes were started with.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ProcessSpec:
    """One long-running process. `ready_url` answering `ready_status` means it is ready: an http:// URL,
    or a postgresql:// one that accepts a session (`ready_status` is then unused)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    port: int | None = None
    ready_url: str | None = None
    ready_status: int = 200
    kind: str = "service"  # service | sidecar | database
    app_id: str | None = None
    extra_ports: list[int] = field(default_factory=list)
    # Start only once this URL answers 2xx (or after `start_after_timeout_s`): a service waits for
    # its sidecar, as Kubernetes native sidecars start before the app containers.
    start_after_url: str | None = None
    start_after_timeout_s: float = 30.0
    # Liveness, as kubelet's: once the process has been ready, this many failed probes in a row
    # (one per `Plan.liveness_interval_s`, 10 s, 2 s timeout each: 30 s, the manifests' livenessProbe
    # failureThreshold 3) mean it hangs: it is stopped and restarted.
    liveness_url: str | None = None
    liveness_failures: int = 3
    # Prometheus metrics to scrape, when the process serves them (the sandbox's Prometheus reads this).
    metrics_url: str | None = None
    # The OS user to run as (only root can switch; PostgreSQL refuses to run as root).
    user: str | None = None
    # The signal that asks it to stop (PostgreSQL wants SIGINT, see console.sandbox.postgres).
    stop_signal: str = "SIGTERM"

    @property
    def stop_signal_number(self) -> int:
        return int(signal.Signals[self.stop_signal])

    @property
    def ports(self) -> list[int]:
        return [p for p in [self.port, *self.extra_ports] if p]


@dataclass
class BrokerSpec:
    """memory: tansu with memory:// storage; durable: tansu on a local S3; external: KAFKA_BOOTSTRAP."""

    mode: str = "memory"
    bootstrap: str = ""
    port: int | None = None
    s3_port: int | None = None
    bucket: str = "tansu"


@dataclass
class RestartPolicy:
    """Kubelet-style crash backoff (doubling, capped, reset after a healthy run), scaled for a laptop."""

    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    reset_after_s: float = 60.0

    def delay(self, consecutive_failures: int) -> float:
        if consecutive_failures <= 0:
            return 0.0
        return min(self.max_backoff_s, self.initial_backoff_s * 2 ** (consecutive_failures - 1))


@dataclass
class Plan:
    dir: str
    broker: BrokerSpec
    processes: list[ProcessSpec]
    manifests_path: str | None = None  # KafkaTopic/Subscription YAML; None = create no topics
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    ready_timeout_s: float = 60.0
    # Readiness and liveness of a process that has been ready, as the manifests' readinessProbe
    # periodSeconds (a process not yet ready since it started is probed every 0.25 s).
    probe_interval_s: float = 5.0
    # Liveness of a process that has been ready, as the manifests' livenessProbe periodSeconds: until
    # issue 16 it ran with readiness every 5 s, a probe per process more than the cluster sends.
    liveness_interval_s: float = 10.0
    urls: dict[str, str] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)  # service -> its database URL
    absent: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            dir=data["dir"],
            broker=BrokerSpec(**data.get("broker") or {}),
            processes=[ProcessSpec(**p) for p in data.get("processes") or ()],
            manifests_path=data.get("manifests_path"),
            restart=RestartPolicy(**data.get("restart") or {}),
            ready_timeout_s=float(data.get("ready_timeout_s", 60.0)),
            probe_interval_s=float(data.get("probe_interval_s", 5.0)),
            liveness_interval_s=float(data.get("liveness_interval_s", 10.0)),
            urls=dict(data.get("urls") or {}),
            databases=dict(data.get("databases") or {}),
            absent=list(data.get("absent") or ()),
        )

    @classmethod
    def load(cls, path: Path) -> Plan:
        return cls.from_dict(json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        write_json_atomic(path, json.loads(self.to_json()))


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    """Readers (status, the console) never see a half-written file: write aside, then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)  # secrets never exist world-readable
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True))
    os.chmod(tmp, mode)
    tmp.replace(path)
