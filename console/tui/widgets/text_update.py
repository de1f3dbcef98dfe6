"""Changing a Static's text without laying the whole screen out again when its size stays the same.

`Static.update` asks for a layout by default, and a layout measures, places and repaints every widget of
the screen: on the Overview (three tables, six panels) about 40 ms of CPU on the 2-core test machine, and
a refresh changes a few short texts ("updated 1s ago") several times per refresh period. Only a change of
the widget's size needs a layout; Textual measures the new text (the same measures the layout would use)
and the layout is asked for only when the width an auto-width widget wants, or the height an auto-height
widget needs, differs from before.
"""

from __future__ import annotations

from textual.visual import VisualType
from textual.widget import Widget
from textual.widgets import Static


def update_text(widget: Static, content: VisualType) -> None:
    """`widget.update(content)`, with a layout only when the widget's size changes."""
    if not widget.is_mounted or not widget.size.width:  # not laid out yet: the first layout measures it
        widget.update(content)
        return
    before = _measure(widget)
    widget.update(content, layout=False)
    if _measure(widget) != before:
        widget.refresh(layout=True)


def _measure(widget: Static) -> tuple[int | None, int | None]:
    """(the width an auto-width widget wants, the height an auto-height one needs at its width); None where
    the stylesheet fixes that dimension (then the text cannot change it)."""
    styles = widget.styles
    viewport = widget.app.size
    container = widget.parent.size if isinstance(widget.parent, Widget) else viewport
    width: int | None = None
    if styles.width is not None and styles.width.is_auto:
        width = widget.get_content_width(container, viewport)
    height: int | None = None
    if styles.height is not None and styles.height.is_auto:
        height = widget.get_content_height(container, viewport, width or widget.content_size.width)
    return width, height

