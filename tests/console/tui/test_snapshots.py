"""Each screen of the dashboard as an SVG, drawn from the recorded system (fixed clock, no refresh workers, no
cursor blink): a change in what a screen shows fails here until the new SVG is reviewed and accepted
(`pytest tests/console/tui/test_snapshots.py --snapshot-update`). The README shows these SVGs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.tui.screens.dead_letters import DeadLetterScreen, DlqMessagesScreen
from console.tui.screens.rollouts import HistoryScreen
from tests.console.tui.conftest import SIZE, pressed, recorded_app
from tests.console.tui.recorded import letter_rows, revisions

Before = Callable[[Pilot[int]], Awaitable[None]]


async def command_line(pilot: Pilot[int]) -> None:
    await pressed("colon", "d", "l")(pilot)
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause()


async def dlq_messages(pilot: Pilot[int]) -> None:
    await pilot.press("3")
    screen = DlqMessagesScreen("task-events-dlq")
    screen.action_reload = lambda: None  # type: ignore[method-assign]  # recorded: nothing to read from
    await pilot.app.push_screen(screen)
    screen.show_letters(letter_rows())
    await pilot.pause()


async def dead_letter(pilot: Pilot[int]) -> None:
    await pilot.press("3")
    await pilot.app.push_screen(DeadLetterScreen("task-events-dlq", letter_rows()[0]))
    await pilot.pause()


async def history(pilot: Pilot[int]) -> None:
    await pilot.press("4")
    screen = HistoryScreen("worker")
    screen.action_reload = lambda: None  # type: ignore[method-assign]
    await pilot.app.push_screen(screen)
    screen.show_revisions(revisions())
    await pilot.pause()


async def lag_partitions(pilot: Pilot[int]) -> None:
    """Into worker's task-events partitions, each key once the screen before it has its focus."""
    await pressed("2", "down", "enter", "enter", "down")(pilot)


def lag_partitions_then(*keys: str) -> Before:
    async def before(pilot: Pilot[int]) -> None:
        await lag_partitions(pilot)
        await pressed(*keys)(pilot)
    return before


SCREENS: dict[str, Before] = {
    "overview": pressed(),
    "lag": pressed("2", "down"),
    "lag-group": lag_partitions,
    "lag-partition": lag_partitions_then("enter"),
    "dead-letters": pressed("3"),
    "dead-letters-messages": dlq_messages,  # the screens a browse would fill, filled from the recording
    "dead-letter": dead_letter,
    "rollouts": pressed("4", "down", "down", "down", "down"),
    "rollout-history": history,
    "pods": pressed("5", "end"),
    "platform": pressed("6", "down"),
    "events": pressed("7"),
    "logs": pressed("8"),
    "help": pressed("4", "question_mark"),
    "command-line": command_line,
}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(screen: str, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=SCREENS[screen])


def test_readonly_rollouts(snap_compare: Callable[..., bool]) -> None:
    """Under --readonly the mutations are not offered: no r and u in the footer, and the top line says so."""
    assert snap_compare(recorded_app(readonly=True), terminal_size=SIZE, run_before=pressed("4"))
