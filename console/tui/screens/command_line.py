"""k9s's `:` prompt: type a screen's name (or an alias, or a prefix), enter to go there, esc to stay."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from console.tui.screens import HELP, SCREENS


class CommandLine(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Cancel", key_display="esc")]

    def compose(self) -> ComposeResult:
        names = [info.name for info in (*SCREENS, HELP)]
        with Vertical(id="dialog"):
            yield Static("jump to: " + " ".join(names))
            yield Input(placeholder=":", id="command", suggester=SuggestFromList(names, case_sensitive=False))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
