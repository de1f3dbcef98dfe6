"""The App's refresh loop on the recorded system: every area refreshed over and over, each once per refresh
period and never more. (A refresh's message that bubbled back from the screen to the App counted as one
more refresh and started one more loop each time: 12 alert refreshes a second instead of one every 2 s.)"""

from __future__ import annotations

import time
from collections import Counter
from functools import partial

import pytest

from console.live.hub import Outcome
from console.tui.app import ON_DEMAND, REFRESHED, make_dashboard
from tests.console.live.states import NOW
from tests.console.tui.conftest import SIZE
from tests.console.tui.live import wait_for
from tests.console.tui.recorded import recorded_hub

pytestmark = pytest.mark.anyio
PERIOD_S = 0.5


async def test_each_area_refreshes_once_per_period() -> None:
    hub = recorded_hub()
    calls: Counter[str] = Counter()

    def refresh(area: str) -> Outcome:  # the recorded system has no I/O to do: count, and answer as a refresh
        calls[area] += 1
        return "ok"
    periodic = [area for area in REFRESHED if area not in ON_DEMAND]
    for area in periodic:
        setattr(hub, f"refresh_{area}", partial(refresh, area))
    app = make_dashboard(hub.target, hub=hub, refresh_s=PERIOD_S, clock=lambda: NOW)
    started = time.monotonic()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: all(calls[area] >= 4 for area in periodic), "four refreshes of every area")
        await pilot.pause(2.0)
        elapsed = time.monotonic() - started
    most = elapsed / PERIOD_S + 1  # the first refresh at once, then one per period at most (a loaded machine: fewer)
    assert max(calls.values()) <= most, (dict(calls), round(elapsed, 1))
