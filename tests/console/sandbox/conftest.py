"""Fixtures for the sandbox tests: a real tansu broker, fixture manifests and tiny stand-in processes.

In CI (CI=true) a missing tansu binary is a failure, not a skip: the broker is a core part.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from console.sandbox import control
from console.sandbox.broker import Broker, BrokerError, start_tansu, tansu_binary
from console.sandbox.layout import SandboxLayout
from console.sandbox.plan import BrokerSpec, Plan, ProcessSpec, RestartPolicy
from console.sandbox.ports import free_port
from tests.utils.required import require

TINY_SERVICE = Path(__file__).parent / "fixtures" / "tiny_service.py"

FIXTURE_MANIFESTS = {
    "topics.yaml": """
        apiVersion: kafka.strimzi.io/v1
        kind: KafkaTopic
        metadata:
          name: orders
          namespace: kafka
          labels: {strimzi.io/cluster: todo-kafka}
        spec:
          partitions: 3
          replicas: 1
          config: {retention.ms: 604800000, cleanup.policy: delete}
        ---
        apiVersion: kafka.strimzi.io/v1
        kind: KafkaTopic
        metadata:
          name: payments-topic
          labels: {strimzi.io/cluster: todo-kafka}
        spec:
          topicName: payments
          partitions: 1
        """,
    "sub/subscriptions.yaml": """
        apiVersion: dapr.io/v2alpha1
        kind: Subscription
        metadata: {name: shop-orders}
        spec:
          pubsubname: kafka-pubsub
          topic: orders
          routes: {default: /events/orders}
          deadLetterTopic: orders-dlq
        scopes: [shop]
        """,
    "kustomization.yaml": """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [topics.yaml, sub/subscriptions.yaml]
        """,
}


def write_manifests(root: Path, files: dict[str, str] = FIXTURE_MANIFESTS) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def fixture_manifests(tmp_path: Path) -> Path:
    return write_manifests(tmp_path / "manifests")


def require_tansu() -> None:
    require(tansu_binary, BrokerError, "the tansu broker")


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Broker]:
    """A fresh memory-storage tansu on a free loopback port."""
    require_tansu()
    broker = start_tansu(tmp_path / "broker")
    yield broker
    broker.stop()


def tiny_process(name: str, *, kind: str = "service", ready_path: str = "/readyz", ready_status: int = 200,
                 grandchild: bool = False) -> ProcessSpec:
    port = free_port()
    argv = [sys.executable, str(TINY_SERVICE), "--port", str(port), "--ready-path", ready_path,
            "--ready-status", str(ready_status)]
    if grandchild:
        argv.append("--grandchild")
    return ProcessSpec(
        name=name, argv=argv, port=port, kind=kind, app_id=name.removesuffix("-dapr"),
        ready_url=f"http://127.0.0.1:{port}{ready_path}", ready_status=ready_status,
    )


@pytest.fixture
def tiny_plan(tmp_path: Path, fixture_manifests: Path) -> Callable[..., Plan]:
    """A plan with a memory broker, the fixture manifests and a service + sidecar stand-in pair."""
    require_tansu()

    def make(**overrides: object) -> Plan:
        port = free_port()
        sidecar = tiny_process("shop-dapr", kind="sidecar", ready_path="/v1.0/healthz", ready_status=204)
        service = tiny_process("shop", grandchild=True)
        service.start_after_url = sidecar.ready_url  # as a service waits for its sidecar
        plan = Plan(
            dir=str(tmp_path / "sandbox"),
            broker=BrokerSpec("memory", f"127.0.0.1:{port}", port),
            processes=[sidecar, service],
            manifests_path=str(fixture_manifests),
            restart=RestartPolicy(initial_backoff_s=0.2, max_backoff_s=1.0, reset_after_s=30.0),
            ready_timeout_s=30.0,
            probe_interval_s=0.3,
            liveness_interval_s=0.3,
            urls={"shop": "http://127.0.0.1/"},
        )
        for key, value in overrides.items():
            setattr(plan, key, value)
        return plan

    return make


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else f"({path} missing)"


def diagnose(layout: SandboxLayout, unwell: dict[str, dict[str, Any]] | None = None) -> str:
    """Which processes were not ready or restarted, with the tail of their logs and the supervisor's.

    Without `unwell`, they are read from the sandbox's state file."""
    if unwell is None:
        processes = (control.read_state(layout) or {}).get("processes", {})
        unwell = {n: p for n, p in processes.items() if not p.get("ready") or p.get("restarts")}
    parts = []
    for name, proc in unwell.items():
        fields = {k: proc.get(k) for k in ("pid", "ready", "restarts", "last_exit")}
        parts.append(f"--- {name} {fields}\n" + tail(layout.log(name)))
    parts.append("--- supervisor\n" + tail(layout.log("supervisor"), 30))
    return "\n".join(parts)


def start_sandbox(layout: SandboxLayout, plan: Plan, timeout_s: float = 60) -> dict[str, Any]:
    """`control.start_supervisor` for tests that need it to succeed: on failure the test fails with
    the unwell processes' logs (a bare "not ready" from CI cannot be diagnosed), and nothing is left running."""
    try:
        return control.start_supervisor(layout, plan, timeout_s=timeout_s)
    except control.SandboxError as exc:
        failure = f"{exc}\n{diagnose(layout)}"
    if control.supervisor_pid(layout):
        control.down(layout)
    pytest.fail(failure, pytrace=False)


@contextmanager
def running_sandbox(folder: Path) -> Iterator[SandboxLayout]:
    """A whole sandbox in `folder` on free ports, as `sandbox up` starts it, for a module's tests to share;
    120 s to get ready (a loaded 2-core machine has needed over 60), and down at the end whatever happened."""
    require_tansu()
    layout = SandboxLayout(folder)
    plan = control.plan_sandbox(layout, port_base=0)
    plan.ready_timeout_s = 120
    start_sandbox(layout, plan, timeout_s=125)
    try:
        yield layout
    finally:
        control.down(layout)
