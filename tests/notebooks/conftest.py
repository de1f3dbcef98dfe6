"""What the runbooks run against: one sandbox for the whole session, the Kubernetes stand-in, a Prometheus.

A sandbox costs seconds of start-up (8 s on a quiet 2-core machine, 30-40 s under load): every runbook that
runs on a healthy sandbox shares one, started on first use and brought down at the end of the session. Only
the drill that must fail gets a sandbox of its own (its backend's outbox relay is off). The stand-in cluster
loads in a fraction of a second, so each test gets a fresh one and no scenario leaks into another.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from console.sandbox import control, monitoring
from console.sandbox.layout import SandboxLayout
from console.sandbox.ports import free_port
from tests.console.sandbox.conftest import require_tansu, start_sandbox

# The stand-in cluster and a kubeconfig for it (in $KUBECONFIG too), as the console's Kubernetes tests get them.
from tests.utils.kube_fixtures import cluster, kubeconfig, prod_objects, serving_cert  # noqa: F401
from tests.utils.required import missing
from tests.utils.waiting import wait_until

SANDBOX_TIMEOUT_S = 150  # cold start is 8-34 s on 2 cores depending on load (console/sandbox/README.md)
RELAY_OFF_SERVICES = ["backend", "worker", "websocket", "audit"]  # what the drill reads; no notification


def running(root: Path, *, services: list[str] | None = None,
            backend_env: dict[str, str] | None = None) -> Iterator[SandboxLayout]:
    """A sandbox on free ports, `backend_env` added to the backend's environment; always brought down."""
    require_tansu()
    layout = SandboxLayout(root)
    plan = control.plan_sandbox(layout, port_base=0, services=services)
    plan.ready_timeout_s = SANDBOX_TIMEOUT_S
    for process in plan.processes:
        if process.name == "backend":
            process.env.update(backend_env or {})
    start_sandbox(layout, plan, timeout_s=SANDBOX_TIMEOUT_S + 5)
    try:
        yield layout
    finally:
        control.down(layout)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxLayout]:
    """The full sandbox every runbook on a healthy system shares (smoke test, drill, verify, lag, DLQ)."""
    yield from running(tmp_path_factory.mktemp("runbooks") / "sandbox")


@pytest.fixture
def relay_off_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxLayout]:
    """A sandbox whose backend runs with its outbox relay off (RELAY_ENABLED=false): events stay in the outbox."""
    yield from running(tmp_path_factory.mktemp("relay-off") / "sandbox", services=RELAY_OFF_SERVICES,
                       backend_env={"RELAY_ENABLED": "false"})


# --- Prometheus ------------------------------------------------------------------------------------------


@pytest.fixture
def prometheus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real Prometheus with the cluster's real alert rules, evaluating every second, at
    TODO_CONSOLE_PROMETHEUS_URL (the runbook's kernel inherits it): what a port-forward gives an operator."""
    binary = monitoring.prometheus_binary()
    if binary is None:
        missing("prometheus not found: apt-get install -y prometheus")
    root = tmp_path / "prometheus"
    config = monitoring.write_config(root, [], interval_s=1.0)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _rules_loaded(url), 60, 0.2, f"Prometheus at {url} with the alert rules loaded")
        monkeypatch.setenv("TODO_CONSOLE_PROMETHEUS_URL", url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _rules_loaded(url: str) -> bool:
    try:
        groups = requests.get(f"{url}/api/v1/rules", timeout=2).json()["data"]["groups"]
    except (requests.RequestException, ValueError, KeyError):
        return False
    return bool(groups)
