"""One line over a panel saying whether its data is live: the source, its address, and when it last answered;
or since when it has been failing and why, with the last good data still shown below it, marked stale."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from console.live.slots import SlotView
from console.tui.render import STYLES, ago
from console.tui.widgets.text_update import update_text


class SourceState(Static):
    """The state of one area of the hub (k9s shows the same in its header: the cluster answered, or not)."""

    DEFAULT_CSS = """
    SourceState { height: auto; color: $text-muted; }
    SourceState.-stale, SourceState.-down { color: $error; text-style: bold; }
    """

    _shown: tuple[str, str] | None = None

    def show(self, view: SlotView[Any], now: float) -> None:
        """Only a change is drawn, and laid out only when its size changes (console.tui.widgets.text_update):
        this runs on every redraw, and "updated 1s ago" changes on most."""
        state = {"ok": "-ok", "stale": "-stale", "down": "-down"}.get(view.state, "-other")
        text = describe(view, now)
        if self._shown == (state, text.plain):
            return
        self._shown = (state, text.plain)
        self.set_classes(state)
        update_text(self, text)


def describe(view: SlotView[Any], now: float) -> Text:
    """`kafka 127.0.0.1:9092 · updated 2s ago`, or the failure with since when and the age of what is shown."""
    where = f"{view.source} {view.address}"
    state = view.state
    if state == "unknown":
        return Text(f"{where} · waiting for the first answer", style=STYLES["muted"])
    if state == "absent":
        return Text(f"{where} · not on this target: {view.reason}", style=STYLES["muted"])
    if state == "ok":
        return Text(f"{where} · updated {ago(view.updated_at, now)}")
    failing = f"failing since {ago(view.failing_since, now)}"
    shown = (f"; showing data from {ago(view.updated_at, now)} (stale)" if state == "stale"
             else "; nothing read yet")
    return Text(f"{view.source.upper()} DOWN · {view.address} · {failing}: {view.reason}{shown}")
