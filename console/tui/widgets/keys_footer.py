"""Textual's Footer, recomposed only when the keys it shows change.

The Footer rebuilds itself (a dozen key widgets mounted and styled) on every bindings signal, and a screen
sends one each time it is shown or its focus moves: on the 2-core test machine that was two thirds
of the CPU of a screen switch (250 ms of 340), for a footer showing the same keys as the last time.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer

Shown = tuple[tuple[str, str, str, bool, str], ...]


def shown_keys(screen: Screen[Any]) -> Shown:
    """What a Footer on `screen` would show: each binding's key, label, action, whether it is enabled."""
    return tuple((binding.key, binding.description, binding.action, enabled, tooltip)
                 for _node, binding, enabled, tooltip in screen.active_bindings.values() if binding.show)


class KeysFooter(Footer):
    def __init__(self) -> None:
        super().__init__()
        self._composed: Shown | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        keys = shown_keys(screen)
        ours = self.is_attached and screen is self.screen
        if ours and keys == self._composed:
            return
        super().bindings_changed(screen)
        if ours and screen.app.app_focus:  # the Footer recomposes (else it waits for the next signal)
            self._composed = keys
