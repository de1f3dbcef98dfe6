"""The dashboard App: built from a Target by `make_dashboard` (posting's `make_posting`), it owns the hub and
the refresh loop; the screens only draw the hub's memory.

The refresh loop, k9s's way: one thread worker per area (`run_worker(..., group=<area>, exclusive=True,
thread=True)`), and the next refresh of an area is scheduled only when the previous one has finished (at the
next tick, so the areas start together), so refreshes never overlap and a slow source only slows its own
area. A worker posts `FeedUpdated` (or `LagSampled`); the App schedules the next round and hands the screen
on show a tick's answers together, and the screen redraws from memory once for them. Every screen is built
ahead, right after start-up (`_build_screens`), so no first visit waits for one to be composed.
The logs area is tailed only while the Logs screen is shown. On quit the hub is closed first (its sockets
end any read in flight), and the workers run in daemon threads (console.tui.threads), so no worker thread
keeps the process alive (Textual discussion #3967).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import PurePath
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer

from console.live.hub import Hub, make_hub
from console.model.findings import Severity
from console.model.logs import LogQuery
from console.target import Target
from console.tui.messages import FeedUpdated, LagSampled
from console.tui.screens import HELP, SCREENS, matches
from console.tui.threads import DaemonThreadExecutor

REFRESHED = ("workloads", "lag", "dead_letters", "alerts", "events", "logs")  # wiring comes with lag and DLQs
ON_DEMAND = {"logs": "logs"}  # areas refreshed only while their screen is shown
HOLD_S = 0.5  # how long the first answer of a tick waits for the others before the screen is told
# How long a refresh thread may hold the GIL while the App's thread waits for it: CPython's default, 5 ms, let a
# refresh worker's pure-Python stretch (the lag verdict, 1,500 partitions) hold a key press for several of them
# per frame; at 1 ms the App's thread gets the interpreter back five times sooner.
SWITCH_INTERVAL_S = 0.001


class DashboardApp(App[int]):
    """One operator's view of one target: every screen, the `:` command line, `?` help, the palette."""

    CSS_PATH: ClassVar[list[str | PurePath]] = ["global.tcss", "app.tcss"]  # harlequin's split: shared, then layouts
    TITLE = "todo-console"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        info.name: info.factory() for info in SCREENS}
    DEFAULT_MODE = "overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("colon", "command_line", "Jump", key_display=":"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        *[Binding(info.key, f"goto('{info.name}')", info.title, show=False) for info in SCREENS],
    ]

    def __init__(self, hub: Hub, *, refresh_s: float = 2.0, readonly: bool = False, live: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.hub = hub
        self.refresh_s = refresh_s
        self.readonly = readonly
        self.live = live
        self.clock = clock
        self._closing = False
        self.building_ahead = False  # the screens being built now are built ahead of their first show
        self._epoch = time.monotonic()
        self._in_flight: set[str] = set()  # areas whose refresh runs now
        self._arrived: dict[str, FeedUpdated] = {}  # refreshed areas the screen has not been told of yet
        self._holding: Timer | None = None
        self._drawn_everywhere: set[str] = set()  # areas whose first answer every screen has drawn
        self._switch_interval = sys.getswitchinterval()  # the process's, put back on unmount

    # --- the refresh loop ------------------------------------------------------------------------------

    def on_mount(self) -> None:
        asyncio.get_running_loop().set_default_executor(DaemonThreadExecutor())
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        if self.live:
            for area in REFRESHED:
                self._launch(area)
            self.call_after_refresh(self._build_screens)

    def _build_screens(self) -> None:
        """Compose every screen now, while the sources give their first answers, and have each draw those
        answers once (`_tell_arrived`): the first visit to Pods (1,000 rows to add and measure, a dozen
        widgets to style) cost 900 ms of a frozen terminal when it was built on the key press. Textual builds a
        mode's screen on its first `switch_mode`; `_init_mode` is that first half without the switch. Not the
        Logs screen: showing it starts a log query, and it has no table to fill."""
        self.building_ahead = True
        try:
            for info in SCREENS:
                if info.name not in self._screen_stacks and info.name not in ON_DEMAND and not self._closing:
                    self._init_mode(info.name)
        finally:
            self.building_ahead = False

    def _launch(self, area: str) -> None:
        if self._closing:
            return
        if area in ON_DEMAND and self.current_mode != ON_DEMAND[area]:
            self.set_timer(self.refresh_s, partial(self._launch, area))
            return
        self._in_flight.add(area)
        self.run_worker(partial(self._refresh, area), name=f"refresh {area}", group=area, exclusive=True,
                        thread=True, exit_on_error=False)

    def _refresh(self, area: str) -> None:
        """In the area's worker thread: the I/O, then a message to the App's thread."""
        outcome = getattr(self.hub, f"refresh_{area}")()
        self.post_message(LagSampled(area, outcome) if area == "lag" else FeedUpdated(area, outcome))

    @on(FeedUpdated)  # LagSampled too: `on` matches subclasses, a plain on_feed_updated would not
    def refreshed(self, message: FeedUpdated) -> None:
        """A worker finished: schedule the area's next refresh at the next tick, and tell the screen on show
        once this tick's refreshes are all in (or HOLD_S after the first, so a slow source holds no other)."""
        if self._closing or not self.screen_stack:  # quitting: the screens are gone already
            return
        self.set_timer(self._to_next_tick(), partial(self._launch, message.area))
        self._in_flight.discard(message.area)
        self._arrived[message.area] = type(message)(message.area, message.outcome)
        if not self._in_flight:
            self._tell_arrived()
        elif self._holding is None:
            self._holding = self.set_timer(HOLD_S, self._tell_arrived)

    def _to_next_tick(self) -> float:
        """Seconds to the next multiple of the refresh period since the start: every area starts its refresh
        at the same moment, so their answers arrive together and the screen redraws once per period."""
        elapsed = time.monotonic() - self._epoch
        return self.refresh_s - elapsed % self.refresh_s

    def _tell_arrived(self) -> None:
        if self._holding is not None:
            self._holding.stop()
            self._holding = None
        arrived, self._arrived = list(self._arrived.values()), {}
        if self._closing or not self.screen_stack:
            return
        for message in arrived:  # in one go: the screen redraws once for all of them
            self.screen.post_message(message)
        first = [m for m in arrived if m.area not in self._drawn_everywhere and m.outcome == "ok"]
        if first:  # an area's first answer: every screen built ahead draws it, so no first visit has to
            self._drawn_everywhere.update(m.area for m in first)
            for stack in self._screen_stacks.values():
                if stack and stack[0] is not self.screen:
                    for message in first:
                        stack[0].post_message(type(message)(message.area, message.outcome))

    def refresh_now(self, area: str) -> None:
        """An extra refresh of one area (after an action changed it); the exclusive worker replaces none in
        flight twice: the hub answers `busy` to a second call."""
        if self.live and not self._closing:
            self.run_worker(partial(self._refresh_once, area), group=f"{area}-now", exclusive=True, thread=True,
                            exit_on_error=False)

    def _refresh_once(self, area: str) -> None:
        outcome = getattr(self.hub, f"refresh_{area}")()
        self.call_from_thread(self._tell_screen, FeedUpdated(area, outcome))

    def _tell_screen(self, message: FeedUpdated) -> None:
        if not self._closing and self.screen_stack:
            self.screen.post_message(message)

    # --- what every screen shows -----------------------------------------------------------------------

    def verdict(self) -> Text:
        """The top line's right side: healthy, or how many errors and warnings, worst colour."""
        findings = self.hub.findings(self.clock())
        errors = sum(1 for f in findings if f.severity is Severity.ERROR)
        warnings = sum(1 for f in findings if f.severity is Severity.WARN)
        mode = "read-only · " if self.readonly else ""
        if not errors and not warnings:
            waiting = [a for a in REFRESHED if a not in ON_DEMAND and self.hub.view(a).state == "unknown"]
            if waiting:  # not "healthy" before the sources have said anything
                return Text.assemble(mode, (f"reading {', '.join(waiting)}...", "dim"))
            return Text.assemble(mode, ("healthy", "bold green"))
        style = "bold red" if errors else "bold yellow"
        return Text.assemble(mode, (f"{errors} error{'s' if errors != 1 else ''}, "
                                    f"{warnings} warning{'s' if warnings != 1 else ''}", style))

    # --- navigation ------------------------------------------------------------------------------------

    def goto(self, name: str) -> bool:
        """Show a screen by name, alias or key (`:lag`, `:dlq`); False (and a note) for an unknown one."""
        found = matches(name)
        if len(found) != 1:
            known = found or SCREENS
            what = f"{name!r} could be" if found else f"no screen called {name!r}:"
            self.notify(f"{what} " + ", ".join(s.name for s in known), severity="error")
            return False
        info = found[0]
        if info is HELP:
            self.action_help()
        else:
            self.switch_mode(info.name)
        return True

    def show_logs(self, query: LogQuery) -> None:
        """The Logs screen on `query` (a dead letter's event id, a request's correlation id)."""
        self.hub.set_log_query(query)
        self.goto("logs")
        self.refresh_now("logs")

    def action_goto(self, name: str) -> None:
        self.goto(name)

    def action_command_line(self) -> None:
        from console.tui.screens.command_line import CommandLine

        def chosen(name: str | None) -> None:
            if name:
                self.goto(name)
        self.push_screen(CommandLine(), chosen)

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for info in SCREENS:
            yield SystemCommand(f"{info.title} screen", f":{info.name} (key {info.key}): {info.summary}",
                                partial(self.goto, info.name))
        yield SystemCommand("Help", "? : every key of the current screen", self.action_help)
        yield from super().get_system_commands(screen)

    # --- mutations and quitting -----------------------------------------------------------------------

    def refuse_if_readonly(self, what: str) -> bool:
        """True (and a note) when the console is read-only: every mutation asks this first."""
        if self.readonly:
            self.notify(f"{what}: refused, the console is read-only (--readonly / TODO_CONSOLE_READONLY)",
                        severity="error")
        return self.readonly

    async def action_quit(self) -> None:
        self.exit(0)

    def on_unmount(self) -> None:
        """However the App ends (q, ctrl+c, a test's end): no new refresh, and the sources closed, which ends
        a read in flight. Closing takes time (a cluster's watch threads stop one by one), so it runs beside the
        exit rather than before it; the worker threads are daemons (console.tui.threads): nothing holds the
        process."""
        self._closing = True
        self.workers.cancel_all()
        sys.setswitchinterval(self._switch_interval)  # the process may go on (tests run many Apps in one)
        threading.Thread(target=self.hub.close, name="dashboard-close", daemon=True).start()


def make_dashboard(target: Target, *, refresh_s: float = 2.0, readonly: bool = False, hub: Hub | None = None,
                   live: bool = True, clock: Callable[[], float] = time.time) -> DashboardApp:
    """The dashboard for `target`. Tests pass a `hub` filled from recorded states (`Hub.replay`), `live=False`
    (no refresh workers) and a fixed `clock`, so every screen draws the same way every time."""
    return DashboardApp(hub or make_hub(target, refresh_s=refresh_s), refresh_s=refresh_s, readonly=readonly,
                        live=live, clock=clock)
