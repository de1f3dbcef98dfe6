"""What the dashboard's parts tell each other: the App's refresh workers announce new data, action workers
announce what they did. Screens redraw on these; nothing polls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from console.runbooks.model import CellProgress, RunResult
    from console.runbooks.records import CellView


class FeedUpdated(Message, bubble=False):
    """An area of the hub was refreshed (`outcome`: ok, failed, absent or busy); its view is in the hub.
    The App receives it from the worker and hands a copy to the screen on show; it never bubbles back (a
    copy that did would reach the App as a new refresh and start one more refresh loop each time: Textual
    sets `bubble` from the class keyword, and a `bubble = False` in the class body is overwritten)."""

    def __init__(self, area: str, outcome: str) -> None:
        super().__init__()
        self.area = area
        self.outcome = outcome


class LagSampled(FeedUpdated, bubble=False):
    """A new lag sample joined the history: the sparklines grew by one point."""


class DlqRedriven(Message):
    """A redrive from the Dead letters screen finished; `results` are console.sources.dead_letters.RedriveResult."""

    def __init__(self, dlq: str, results: Sequence[Any]) -> None:
        super().__init__()
        self.dlq = dlq
        self.results = tuple(results)


class ActionDone(Message):
    """A mutation (purge, restart, undo) or a read on demand finished: `summary` is one line for the operator,
    `ok` whether it did what was asked."""

    def __init__(self, what: str, summary: str, *, ok: bool = True) -> None:
        super().__init__()
        self.what = what
        self.summary = summary
        self.ok = ok


class RunProgressed(Message):
    """A runbook's code cell started or ended; posted from the run's thread."""

    def __init__(self, event: CellProgress) -> None:
        super().__init__()
        self.event = event


class RunPrinted(Message):
    """What a runbook's cells printed, as they printed it."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RunEnded(Message):
    """A run ended: its result and the executed notebook's outputs; or `problem`, one line, when it could not
    run at all."""

    def __init__(self, result: RunResult | None, outputs: Sequence[CellView] = (), problem: str | None = None) -> None:
        super().__init__()
        self.result = result
        self.outputs = tuple(outputs)
        self.problem = problem
