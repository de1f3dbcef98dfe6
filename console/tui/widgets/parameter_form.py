"""A form generated from a runbook's declared parameters: one field per parameter, shaped by its type.

A `bool` is a switch, a parameter with `{a, b}` choices a select, anything else a text field holding the value
as `-p name=value` would write it. The form only collects what was entered and shows where a value was
refused; checking the values is the screen's business (the runbook library's `resolve`, as the CLI does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Select, Static, Switch

if TYPE_CHECKING:
    from console.runbooks.model import Parameter

Field = Input | Select[Any] | Switch


class ParameterForm(VerticalScroll):
    """`values()` what the fields hold (text, or the typed value of a switch or select); `refuse(name, why)`
    marks a field and says why under it; `Edited(name)` after any change."""

    DEFAULT_CSS = """
    ParameterForm { height: auto; }
    ParameterForm .parameter { height: auto; }
    ParameterForm .parameter Horizontal { height: auto; }
    ParameterForm .parameter-name { width: 36; padding: 1 1 0 0; }
    ParameterForm .parameter Input, ParameterForm .parameter Select { width: 1fr; }
    ParameterForm .parameter-help { color: $text-muted; padding-left: 36; }
    ParameterForm .parameter-refused { display: none; color: $error; text-style: bold; padding-left: 36; }
    ParameterForm .-refused .parameter-refused { display: block; }
    ParameterForm .-refused Input { border: tall $error; }
    """

    class Edited(Message):
        """A field changed: the screen may check the value again."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, parameters: Sequence[Parameter], values: Mapping[str, Any], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.parameters = tuple(parameters)
        self.start = dict(values)

    def compose(self) -> ComposeResult:
        for parameter in self.parameters:
            with Vertical(classes="parameter", id=f"parameter-{parameter.name}"):
                with Horizontal():
                    yield Static(label(parameter), classes="parameter-name")
                    yield field(parameter, self.start.get(parameter.name, parameter.default))
                if parameter.help:
                    yield Static(Text(parameter.help), classes="parameter-help")
                yield Static(classes="parameter-refused")

    def field(self, name: str) -> Widget:
        return self.query_one(f"#field-{name}")

    def values(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for parameter in self.parameters:
            widget = self.field(parameter.name)
            found[parameter.name] = widget.value if isinstance(widget, Input | Switch | Select) else None
        return found

    def refuse(self, name: str, problem: str) -> None:
        """Mark the parameter's field and say why under it (other marks stay: `accept` clears one)."""
        row = self.query_one(f"#parameter-{name}")
        row.add_class("-refused")
        row.query_one(".parameter-refused", Static).update(f"refused: {problem}")

    def accept(self, name: str) -> None:
        row = self.query_one(f"#parameter-{name}")
        row.remove_class("-refused")
        row.query_one(".parameter-refused", Static).update("")

    def refused(self) -> list[str]:
        return [p.name for p in self.parameters if self.query_one(f"#parameter-{p.name}").has_class("-refused")]

    def focus_field(self, name: str) -> None:
        self.field(name).focus()
        self.scroll_to_widget(self.query_one(f"#parameter-{name}"))

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def _edited(self, event: Input.Changed | Switch.Changed | Select.Changed) -> None:
        event.stop()
        widget = event.control
        if widget is not None and widget.id and widget.id.startswith("field-"):
            self.post_message(self.Edited(widget.id.removeprefix("field-")))

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        """enter in a field moves on to the next one, as tab does: it never starts a run on its own."""
        event.stop()
        self.screen.focus_next()


def label(parameter: Parameter) -> Text:
    """`outage_s  float [1..900]`: the name, then its type and what it allows."""
    text = Text(parameter.name, style="bold")
    text.append(f"  {parameter.type}", style="dim")
    if parameter.constraint and parameter.choices is None:
        text.append(f" {parameter.constraint}", style="dim")
    return text


def field(parameter: Parameter, value: Any) -> Field:
    name = f"field-{parameter.name}"
    if parameter.type == "bool" and isinstance(value, bool):
        return Switch(value=value, id=name)
    if parameter.choices is not None and value in parameter.choices:
        return Select([(str(c), c) for c in parameter.choices], value=value, allow_blank=False, id=name)
    return Input(value=as_text(value), placeholder=parameter.type, id=name)


def as_text(value: Any) -> str:
    """A value as `-p` would write it: `true`, `30.0`, text as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
