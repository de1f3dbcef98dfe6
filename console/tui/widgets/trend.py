"""A labelled sparkline: what is drawn, its latest value and its range, over the points given."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from console.tui.widgets.text_update import update_text


class Trend(Vertical):
    DEFAULT_CSS = """
    Trend { height: auto; }
    Trend Sparkline { height: 2; }
    Trend .trend-label { color: $text-muted; height: 1; }
    """

    def __init__(self, label: str, fmt: Callable[[float], str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.fmt = fmt

    def compose(self) -> ComposeResult:
        yield Static(self.label, classes="trend-label")
        yield Sparkline([], summary_function=max)

    def show(self, values: Sequence[float | None]) -> None:
        points = [v or 0.0 for v in values]
        if points:
            label = (f"{self.label}: now {self.fmt(points[-1])}, max {self.fmt(max(points))} "
                     f"over {len(points)} samples")
        else:
            label = f"{self.label}: no samples yet"
        update_text(self.query_one(".trend-label", Static), label)
        self.query_one(Sparkline).data = points
