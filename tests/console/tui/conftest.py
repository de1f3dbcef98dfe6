"""The dashboard built from the recorded system (tests/console/tui/recorded.py): no refresh workers, a fixed
clock, so screens draw the same on every run. Live tests build theirs against the sandbox or the stand-in."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

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


async def focus_settled(pilot: Pilot[int], deadline_s: float = 60) -> None:
    """Until the active screen has given its focus to a widget (Textual does it on ScreenResume). A key pressed
    before goes nowhere, and on a loaded machine the resume can come several frames after the screen shows:
    CI once drew the Runbooks list with the cursor still on its first row."""
    deadline = time.monotonic() + deadline_s
    while (screen := pilot.app.screen).focus_chain and screen.focused is None and time.monotonic() < deadline:
        await pilot.pause(0.05)
    assert pilot.app.screen.focused is not None or not pilot.app.screen.focus_chain, "no focus after 60 s"


def pressed(*keys: str) -> Callable[[Pilot[int]], Awaitable[None]]:
    """A snapshot's `run_before` that presses `keys` one at a time, each once the screen before it has its focus."""
    async def before(pilot: Pilot[int]) -> None:
        for key in keys:
            await focus_settled(pilot)
            await pilot.press(key)
        await focus_settled(pilot)
        await pilot.pause()
    return before
