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
from tests.console.tui.conftest import SIZE, recorded_app
from tests.console.tui.recorded import letter_rows, revisions

Before = Callable[[Pilot[int]], Awaitable[None]]


async def no_blink(pilot: Pilot[int]) -> None:
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
    """Into worker's task-events partitions, one step at a time: a key pressed while the group's screen is
    still being pushed, or before its partitions table has the focus, would land elsewhere on some runs."""
    for keys in (("2", "down"), ("enter",), ("enter",), ("down",)):
        await pilot.press(*keys)
        await pilot.pause()


SCREENS: dict[str, tuple[tuple[str, ...], Before | None]] = {
    "overview": ((), None),
    "lag": (("2", "down"), None),
    "lag-group": ((), lag_partitions),
    "lag-partition": (("enter",), lag_partitions),
    "dead-letters": (("3",), None),
    "dead-letters-messages": ((), dlq_messages),  # the screens a browse would fill, filled from the recording
    "dead-letter": ((), dead_letter),
    "rollouts": (("4", "down", "down", "down", "down"), None),
    "rollout-history": ((), history),
    "pods": (("5", "end"), None),
    "platform": (("6", "down"), None),
    "events": (("7",), None),
    "logs": (("8",), None),
    "help": (("4", "question_mark"), None),
    "command-line": (("colon", "d", "l"), no_blink),
}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(screen: str, snap_compare: Callable[..., bool]) -> None:
    keys, before = SCREENS[screen]
    assert snap_compare(recorded_app(), press=keys, terminal_size=SIZE, run_before=before)


def test_readonly_rollouts(snap_compare: Callable[..., bool]) -> None:
    """Under --readonly the mutations are not offered: no r and u in the footer, and the top line says so."""
    assert snap_compare(recorded_app(readonly=True), press=("4",), terminal_size=SIZE)
