"""What a key between two screens costs: a screen shown again is not redrawn when nothing it draws from moved,
nor restyled when nothing its styles depend on changed; a new answer or a new theme brings each back
(console/tui/screens/base.py; tests/bench/bench_console_tui.py measures the time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.dom import DOMNode

from console.tui.screens.base import DashboardScreen
from console.tui.screens.pods import PodsScreen
from tests.console.live.states import NOW
from tests.console.tui.conftest import SIZE, recorded_app

pytestmark = pytest.mark.anyio


async def test_a_screen_shown_again_is_redrawn_and_restyled_only_when_its_inputs_moved(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = recorded_app()
    redrawn: list[DashboardScreen] = []
    restyled: list[DOMNode] = []
    redraw = DashboardScreen.redraw

    def counted_redraw(self: DashboardScreen) -> None:
        redrawn.append(self)
        redraw(self)
    monkeypatch.setattr(DashboardScreen, "redraw", counted_redraw)
    async with app.run_test(size=SIZE) as pilot:
        update_styles = app.update_styles

        def counted_update_styles(node: DOMNode, animate: bool = True) -> Any:
            restyled.append(node)
            return update_styles(node, animate=animate)
        monkeypatch.setattr(app, "update_styles", counted_update_styles)

        async def round_trip(while_hidden: Callable[[], None] = lambda: None) -> PodsScreen:
            await pilot.press("1")
            await pilot.pause()
            while_hidden()
            await pilot.pause()
            redrawn.clear()
            restyled.clear()
            await pilot.press("5")
            await pilot.pause()
            await pilot.pause()
            assert isinstance(app.screen, PodsScreen)
            return app.screen

        await pilot.press("5")  # the first show: drawn and styled as Textual does
        await pilot.pause()
        pods = await round_trip()
        assert pods not in redrawn, "redrawn with nothing new to draw"
        assert pods not in restyled, "restyled with nothing its styles depend on changed"

        workloads = app.hub.view("workloads")
        app.hub.replay("workloads", workloads.value, at=NOW)  # a new answer (the same pods)
        pods = await round_trip()
        assert pods in redrawn, "not redrawn after a new answer"

        pods = await round_trip()
        assert pods not in restyled

        def change_theme() -> None:
            app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        pods = await round_trip(change_theme)
        assert pods in restyled, "not restyled after the theme changed while it was hidden"
