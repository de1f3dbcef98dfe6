"""The Runbooks screens as SVGs, as test_snapshots.py draws the others: the list over the real notebooks with
recorded results (tests/console/tui/recorded_runbooks.py), a runbook's form, and a failed run's result with its
outputs. `--snapshot-update` accepts a reviewed change; the README shows these SVGs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.tui.screens.runbook_run import ResultScreen
from console.tui.screens.runbooks import RunbooksScreen
from tests.console.tui.conftest import SIZE, pressed, recorded_app
from tests.console.tui.recorded_runbooks import failed_provision, failed_provision_outputs, write_results

Before = Callable[[Pilot[int]], Awaitable[None]]


@pytest.fixture(autouse=True)
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODO_RUNBOOK_RUNS_DIR", str(tmp_path / "runs"))
    write_results(tmp_path / "runs")


async def listed(pilot: Pilot[int]) -> None:
    """The list read (in its worker), the cursor on provision-oke."""
    await pressed("9")(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, RunbooksScreen)
    deadline = time.monotonic() + 60
    while screen.catalog is None and time.monotonic() < deadline:
        await pilot.pause(0.1)
    await pressed("down", "down", "down", "down", "down")(pilot)


async def form(pilot: Pilot[int]) -> None:
    await listed(pilot)
    await pressed("up", "up", "enter")(pilot)  # kafka-outage-drill, its sandbox_dir the dashboard's sandbox
    outage = pilot.app.screen.query_one("#field-outage_s", Input)
    outage.value = "0.5"  # refused as typed
    outage.focus()
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause()


async def failed_result(pilot: Pilot[int]) -> None:
    await pilot.press("9")
    screen = ResultScreen(failed_provision())
    screen.read_outputs = lambda result: None  # type: ignore[method-assign]  # recorded: handed its outputs
    await pilot.app.push_screen(screen)
    screen.show_report(failed_provision(), failed_provision_outputs())
    await pilot.pause()


SCREENS: dict[str, Before] = {"runbooks": listed, "runbook-form": form, "runbook-result": failed_result}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(screen: str, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=SCREENS[screen])
