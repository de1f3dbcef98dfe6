"""Sandboxes for the runbooks that run on one, started the way `todo-console sandbox up` starts them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.sandbox import control
from console.sandbox.layout import SandboxLayout
from tests.console.sandbox.conftest import require_tansu, start_sandbox

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


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxLayout]:
    """The full sandbox the smoke test and the passing drill share."""
    yield from running(tmp_path_factory.mktemp("runbooks") / "sandbox")


@pytest.fixture
def relay_off_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxLayout]:
    """A sandbox whose backend runs with its outbox relay off (RELAY_ENABLED=false): events stay in the outbox."""
    yield from running(tmp_path_factory.mktemp("relay-off") / "sandbox", services=RELAY_OFF_SERVICES,
                       backend_env={"RELAY_ENABLED": "false"})
