"""`?`: every key the screen underneath answers, its own and the App's, with what each does."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from console.tui.screens import SCREENS
from console.tui.widgets.live_table import LiveTable

IGNORED = frozenset({"copy_text", "screen.copy_text", "help_quit", "app.focus_next", "app.focus_previous"})  # Textual's own, not the dashboard's


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", key_display="esc"),
        Binding("question_mark", "dismiss", "Close", key_display="?"),
        Binding("q", "dismiss", "Close"),
    ]

    def __init__(self, under: Screen[Any]) -> None:
        super().__init__()
        self.rows = keys_of(under)
        self.title_text = f"Keys of {getattr(under, 'TITLE', '') or type(under).__name__}"

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(Text(self.title_text, style="bold"))
            yield LiveTable("KEY", "DOES", id="keys")
            yield Static("Screens: " + ", ".join(f"{s.key} :{s.name}" for s in SCREENS)
                         + "; ctrl+p the command palette; the mouse works too.")

    def on_mount(self) -> None:
        self.query_one(LiveTable).show([(f"{key}-{i}", (key, does)) for i, (key, does) in enumerate(self.rows)])

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


def keys_of(screen: Screen[Any]) -> list[tuple[str, str]]:
    """(key, what it does) for every binding of the screen, then of the App, that can act now (a mutation under
    --readonly cannot); a table's own cursor keys are the usual ones and left out."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for node in (screen, screen.app):
        for key, bindings in node._bindings.key_to_bindings.items():
            for binding in bindings:
                if (key in seen or not binding.description or binding.action in IGNORED
                        or node.check_action(binding.action, ()) is False):
                    continue
                seen.add(key)
                rows.append((binding.key_display or screen.app.get_key_display(binding), binding.description))
    return rows
