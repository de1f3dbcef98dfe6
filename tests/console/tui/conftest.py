"""The dashboard built from the recorded system (tests/console/tui/recorded.py): no refresh workers, a fixed
clock, so screens draw the same on every run. Live tests build theirs against the sandbox or the stand-in."""

from __future__ import annotations

import pytest

from console.tui.app import DashboardApp, make_dashboard
from tests.console.live.states import NOW
from tests.console.tui.recorded import recorded_hub

SIZE = (160, 45)


def recorded_app(*, readonly: bool = False) -> DashboardApp:
    hub = recorded_hub()
    return make_dashboard(hub.target, hub=hub, live=False, readonly=readonly, clock=lambda: NOW)


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests are coroutines; anyio's pytest plugin (anyio comes with httpx) runs them on asyncio."""
    return "asyncio"
