"""Screens built ahead are painted ahead: a hidden screen that drew its first answers is laid out and painted
once off screen, so the first key to it (Pods: a 1,000-row table on the large fixture) finds its visible rows
rendered already and renders none anew (tests/bench/bench_console_tui.py measures the time)."""

from __future__ import annotations

from functools import partial

import pytest

from console.live.hub import Outcome
from console.tui.app import ON_DEMAND, REFRESHED, make_dashboard
from console.tui.screens.pods import PodsScreen
from console.tui.widgets.live_table import LiveTable
from tests.console.live.states import NOW
from tests.console.tui.conftest import SIZE
from tests.console.tui.live import wait_for
from tests.console.tui.recorded import recorded_hub

pytestmark = pytest.mark.anyio


async def test_the_first_show_of_a_screen_built_ahead_renders_no_row_anew() -> None:
    hub = recorded_hub()

    def refresh(area: str) -> Outcome:  # the recorded system has no I/O to do: every refresh answers as one
        return "ok"
    for area in REFRESHED:
        if area not in ON_DEMAND:
            setattr(hub, f"refresh_{area}", partial(refresh, area))
    app = make_dashboard(hub.target, hub=hub, refresh_s=0.5, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        pods = await wait_for(pilot, lambda: next(iter(app._screen_stacks.get("pods", ())), None),
                              "the Pods screen built ahead")
        table = pods.query_one("#pods", LiveTable)
        await wait_for(pilot, lambda: table.row_count and len(table._row_lines), "the hidden Pods table painted")
        assert app.screen is not pods
        assert table.size.width  # laid out while hidden
        painted = set(table._row_lines.keys())
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, PodsScreen), "the Pods screen on show")
        await pilot.pause()
        workloads = hub.view("workloads").value
        assert workloads is not None
        assert table.row_count == len(workloads.pods)
        new = set(table._row_lines.keys()) - painted
        assert not new, f"{len(new)} row lines rendered on the first show"
