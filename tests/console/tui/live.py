"""Helpers for the live dashboard tests: wait on the running App for what a screen shows, with a generous
deadline (refreshes run in worker threads; the CI machine is loaded)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from console.tui.app import DashboardApp
from console.tui.widgets.live_table import LiveTable


async def wait_for(pilot: Pilot[int], predicate: Callable[[], Any], what: str, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:g}s for {what}")
        await pilot.pause(0.2)


def table_rows(app: DashboardApp, selector: str) -> list[list[str]]:
    """The plain text of every row of a table on the screen on show ([] when the screen has no such table)."""
    found = app.screen.query(selector)
    if not found:
        return []
    table = found.first(LiveTable)
    return [[str(getattr(cell, "plain", cell)) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def notes(app: DashboardApp) -> list[str]:
    return [n.message for n in app._notifications]


async def select_row(pilot: Pilot[int], app: DashboardApp, selector: str, key: str) -> None:
    table = app.screen.query_one(selector, LiveTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()
