"""A question before a mutation: what will happen (the dry run's plan), then yes or no. `y` and `n` work."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel", key_display="esc"),
    ]

    def __init__(self, question: str, plan: str, *, can_proceed: bool = True) -> None:
        super().__init__()
        self.question = question
        self.plan = plan
        self.can_proceed = can_proceed

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question, style="bold"))
            with VerticalScroll(id="dialog-body"):
                yield Static(Text(self.plan), id="plan")
            with Horizontal(id="dialog-buttons"):
                if self.can_proceed:
                    yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)" if self.can_proceed else "Close (esc)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes and self.can_proceed)
