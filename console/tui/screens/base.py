"""What every dashboard screen shares: the top line (target, screen, verdict), the `/` filter, `esc` back, and
redrawing from the hub when the App says an area it shows was refreshed.

A screen draws the hub's memory only (`self.hub.view(area)`, `snapshot()`, `overview()`): it never waits on
Kafka, Kubernetes or HTTP. Work that needs I/O (browse a DLQ, a rollout's history, a redrive) runs in a
worker through console.tui.actions and comes back as a message.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from rich.text import Text
from textual import events, on
from textual._context import NoActiveAppError
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from console.live.hub import Hub
from console.live.slots import SlotView
from console.tui.actions import ActionError
from console.tui.messages import FeedUpdated
from console.tui.widgets.keys_footer import KeysFooter
from console.tui.widgets.live_table import LiveTable
from console.tui.widgets.source_state import SourceState
from console.tui.widgets.text_update import update_text

if TYPE_CHECKING:
    from console.tui.app import DashboardApp

T = TypeVar("T")
# A hidden screen's work ahead waits for the screen on show in steps of DEFERRAL_S, MAX_DEFERRALS at most
# (`_yield_to_current`): a frame is due every 1/60 s, and a switch to a screen built ahead paints in a few.
DEFERRAL_S = 0.02
MAX_DEFERRALS = 10


class DashboardScreen(Screen[None]):
    """A screen of the dashboard. Subclasses set AREAS (what they draw) and implement `draw()`."""

    AREAS: ClassVar[tuple[str, ...]] = ()
    TITLE: ClassVar[str] = ""
    MUTATIONS: ClassVar[frozenset[str]] = frozenset()  # actions hidden and refused under --readonly
    ROWS: ClassVar[str | None] = None  # the table whose rows `enter` (or a click on a highlighted row) opens
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "back", "Back", key_display="esc"),
    ]

    def __init__(self) -> None:
        super().__init__()
        with suppress(NoActiveAppError):
            if getattr(self.app, "building_ahead", False):
                # Built ahead by the running App (DashboardApp._build_screens): styled from the stylesheet
                # as it stands when it mounts. Textual starts a new screen's CSS count at -1, so building it
                # and then showing it would each reparse the whole stylesheet (300 ms on the test machine)
                # for a screen that is up to date.
                self._css_update_count = self.app._css_update_count
        self.filter_text = ""
        self._put: dict[str, tuple[str, object, str]] = {}
        self._redraw_due = False
        self._drawn: tuple[tuple[SlotView[Any], ...], str, float] | None = None  # what the last redraw read
        self._styled_for: tuple[object, ...] | None = None  # `_style_inputs()` when its styles were last current

    @property
    def dashboard(self) -> DashboardApp:
        from console.tui.app import DashboardApp

        app = self.app
        if not isinstance(app, DashboardApp):
            raise TypeError(f"a dashboard screen runs in the DashboardApp, not in {type(app).__name__}")
        return app

    @property
    def hub(self) -> Hub:
        return self.dashboard.hub

    @property
    def now(self) -> float:
        return self.dashboard.clock()

    def compose(self) -> ComposeResult:
        with Horizontal(id="topbar"):
            yield Static(id="crumbs")
            yield Static(id="verdict")
        yield from self.compose_body()
        yield Input(placeholder="filter rows: type, enter to keep, esc to clear", id="filter", classes="-hidden")
        yield KeysFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.redraw()

    @on(events.ScreenResume)
    def _keep_styles(self, event: events.ScreenResume) -> None:
        """Run before Textual's own resume handler (the subclass's handlers come first): a switch to a screen
        re-applies the whole stylesheet to every widget of it, in case what its styles depend on changed while
        it was hidden (40-80 widgets here: 20-30 ms of every key press between screens on the test machine).
        What could change is the stylesheet, the theme, and the App's and the screen's classes and pseudo
        classes; a class set on a hidden widget is applied at once (Textual's `update_node_styles`), and focus
        and hover are updated by their own handlers. When none of them moved, the styles are current."""
        if self._styled_for is not None and self._styled_for == self._style_inputs():
            event.refresh_styles = False

    def on_screen_suspend(self) -> None:
        self._styled_for = self._style_inputs()

    def _style_inputs(self) -> tuple[object, ...]:
        app = self.app
        return (app._css_update_count, app.theme, app.classes, app.pseudo_classes, self.classes,
                self.pseudo_classes)

    def on_screen_resume(self) -> None:
        """Back on show. A screen drawn before first shows that (its panels' source lines say how old it is)
        and redraws right after that frame: a key answers with the screen it asked for at once, instead of
        after a redraw from the hub (1,000 pods: a tenth of a second and more on a loaded machine). It does
        not redraw when nothing it draws from has moved (`_unchanged`): an operator flicking between two
        screens would otherwise pay that redraw on every key, and a key pressed during it waits for it."""
        if self._drawn is None:
            self.redraw()
        elif not self.is_current or not self._unchanged():  # not current: built ahead (`_init_mode` resumes it)
            self.call_after_refresh(self._redraw_now)

    def _unchanged(self) -> bool:
        """Whether a redraw now would draw what the last one did: every area the same answer (the top line's
        verdict reads them all), the same filter, and its ages less than a second older (a refresh period's
        redraw leaves them up to two seconds old anyway)."""
        if self._drawn is None:
            return False
        views, filter_text, drawn_at = self._drawn
        now = self.hub.snapshot().areas()
        return (filter_text == self.filter_text and 0 <= self.now - drawn_at < 1.0
                and all(a is b for a, b in zip(views, now, strict=True)))

    @on(FeedUpdated)  # LagSampled too
    def _feed_updated(self, message: FeedUpdated) -> None:
        self.feed_updated(message)

    def feed_updated(self, message: FeedUpdated) -> None:
        """New data in the hub: redraw if this screen shows that area (subclasses may do more). Once for the
        messages queued together (the App hands over a tick's refreshes in one go): a redraw reads every
        area anyway."""
        if message.area in self.AREAS and not self._redraw_due:
            self._redraw_due = True
            self.call_later(self._redraw_now)

    def _redraw_now(self, deferred: int = 0) -> None:
        if self._yield_to_current(partial(self._redraw_now, deferred + 1), deferred):
            return
        self._redraw_due = False
        self.redraw()
        if not self.is_current and self.is_attached:  # a screen built ahead, drawing an area's first answer
            self.call_after_refresh(self._paint_ahead)

    def _yield_to_current(self, again: Callable[[], None], deferred: int) -> bool:
        """For a hidden screen's work ahead (drawing first answers, painting): put it off while the screen on show
        has a frame to lay out or paint. A key pressed just after start-up, while every screen built ahead draws
        and paints its first answers (the Pods screen alone a tenth of a second), then waits for the screen it
        asked for, not for all of them."""
        current = self.app.screen
        if self.is_current or current is self or deferred >= MAX_DEFERRALS:
            return False
        if not (current._layout_required or current._repaint_required or current._dirty_widgets):
            return False
        self.set_timer(DEFERRAL_S, again)
        return True

    def _paint_ahead(self, deferred: int = 0) -> None:
        """A screen built ahead, drawn with its first answers while hidden: laid out and painted once, off
        screen (the frame is thrown away), so its first show finds its layout done and its tables' visible rows
        rendered (console.tui.widgets.live_table caches them): the first key to Pods cost 110-150 ms of a
        frozen terminal to lay out and render a 1,000-row table's first screenful. Later shows cost what any
        switch costs (under 10 ms)."""
        if self.is_current or not self.is_attached or not self.app.size:
            return
        if self._yield_to_current(partial(self._paint_ahead, deferred + 1), deferred):
            return
        self._update_auto_focus()  # as its show will: a focused table's rows look (and are cached) otherwise
        self._refresh_layout(self.app.size)
        self._compositor.render_update(full=True)
        if self._css_update_count == self.app._css_update_count:  # styled from the stylesheet as it stands
            self._styled_for = self._style_inputs()

    def redraw(self) -> None:
        """The screen's own content, then the top line (its crumbs may name what the content chose: the Lag
        drill-down's topic): both from memory."""
        self._drawn = (self.hub.snapshot().areas(), self.filter_text, self.now)
        self.draw()
        self.put("#crumbs", Text.assemble(
            ("todo-console", "bold"), f" · {self.hub.target.label} · ", (self.crumbs(), "bold"),
            (f" · filter: {self.filter_text}" if self.filter_text else "", "italic")))
        self.put("#verdict", self.dashboard.verdict())

    def crumbs(self) -> str:
        return self.TITLE

    def draw(self) -> None:
        """Fill the widgets from the hub (subclasses)."""

    # --- helpers for subclasses ------------------------------------------------------------------------

    def show_state(self, selector: str, view: SlotView[Any]) -> bool:
        """Show an area's state over its panel; False when there is nothing to draw yet."""
        self.query_one(selector, SourceState).show(view, self.now)
        return view.value is not None

    def put(self, selector: str, content: Text | str) -> None:
        """Show `content` in the Static `selector`, unless it shows that already, and lay the screen out again
        only when its size changes (console.tui.widgets.text_update): most redraws change few of them."""
        key = (content.plain, tuple(content.spans), str(content.style)) if isinstance(content, Text) else (content, (), "")
        if self._put.get(selector) == key:
            return
        self._put[selector] = key
        update_text(self.query_one(selector, Static), content)

    def table(self, selector: str) -> LiveTable:
        table = self.query_one(selector, LiveTable)
        table.filter_text = self.filter_text
        return table

    def run_io(self, what: str, call: Callable[[], T], done: Callable[[T], None]) -> None:
        """Run `call` (I/O, console.tui.actions) in a thread worker; `done(result)` back on the App's thread,
        or the failure as one line in a notification. Refreshes keep running meanwhile."""
        def work() -> None:
            try:
                result = call()
            except ActionError as exc:
                self.app.call_from_thread(self.app.notify, f"{what}: {exc}", severity="error", timeout=10)
                return
            self.app.call_from_thread(done, result)
        self.run_worker(work, name=what, group="actions", thread=True, exit_on_error=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Under --readonly a mutation's key is not shown (nor in `?`), and pressing it does nothing."""
        return not (action in self.MUTATIONS and self.dashboard.readonly)

    def open_row(self, key: str) -> None:
        """Open the detail of the ROWS table's row `key` (subclasses that have one)."""

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.ROWS and event.data_table.id == self.ROWS.lstrip("#") and event.row_key.value:
            self.open_row(event.row_key.value)

    def action_open(self) -> None:
        key = self.query_one(self.ROWS, LiveTable).selected_key if self.ROWS else None
        if key:
            self.open_row(key)

    # --- keys ------------------------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("-hidden")
        box.value = self.filter_text
        self.set_focus(box)  # at once: the next key typed is part of the filter

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip()
            self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.add_class("-hidden")
            self.focus_next(LiveTable)

    def action_back(self) -> None:
        """k9s's esc: close the filter, else clear it, else leave the drill-down, else go to the Overview."""
        box = self.query_one("#filter", Input)
        if not box.has_class("-hidden"):
            box.add_class("-hidden")
            self.filter_text = ""
            self.redraw()
            self.focus_next(LiveTable)
        elif self.filter_text:
            self.filter_text = ""
            self.redraw()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.dashboard.goto("overview")
