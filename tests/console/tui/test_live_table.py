"""LiveTable's own render caches (rows and cells keyed on their own versions): what is painted after a
refresh is what the rows say, the cursor's highlight follows the cursor, and rebuilt rows are painted anew."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from console.tui.widgets.live_table import LiveTable

pytestmark = pytest.mark.anyio


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LiveTable("NAME", "AGE", id="t")


def background(table: LiveTable, y: int) -> object:
    style = next(iter(table.render_line(y))).style
    assert style is not None
    return style.bgcolor


def painted(table: LiveTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.row_count + 1)]


async def test_a_changed_cell_is_painted_anew_and_the_rows_around_it_stay() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(LiveTable)
        table.show([("a", ("alpha", "1s")), ("b", ("beta", "2s")), ("c", ("gamma", "3s"))])
        await pilot.pause()
        before = painted(table)
        assert "alpha" in before[1]
        assert "1s" in before[1]
        table.show([("a", ("alpha", "4s")), ("b", ("beta", "2s")), ("c", ("gamma", "3s"))])
        await pilot.pause()
        after = painted(table)
        assert "4s" in after[1]
        assert "1s" not in after[1]
        assert after[0] == before[0]
        assert after[2:] == before[2:]
        cursor_style = background(table, 1)
        table.move_cursor(row=2)
        await pilot.pause()
        assert background(table, 3) == cursor_style  # the highlight moved with the cursor
        assert background(table, 1) != cursor_style
        table.show([("c", ("gamma", "5s")), ("a", ("alpha", "4s"))])  # other keys: the rows are rebuilt
        await pilot.pause()
        rebuilt = painted(table)
        assert "gamma" in rebuilt[1]
        assert "5s" in rebuilt[1]
        assert "alpha" in rebuilt[2]
        assert table.selected_key == "c"


async def test_a_changed_cell_renders_only_that_cell_again_not_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """An age ticking in one column re-renders that cell; the row's other cells come from the cache."""
    rendered: list[tuple[int, int]] = []
    render_cell = DataTable._render_cell

    def counted(self: DataTable[object], row: int, column: int, *args: object, **kwargs: object) -> object:
        rendered.append((row, column))
        return render_cell(self, row, column, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DataTable, "_render_cell", counted)
    app = TableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(LiveTable)
        table.show([("a", ("alpha", "1s")), ("b", ("beta", "2s"))])
        await pilot.pause()
        painted(table)
        rendered.clear()
        table.show([("a", ("alpha", "4s")), ("b", ("beta", "2s"))])
        await pilot.pause()
        assert "4s" in painted(table)[1]
        assert set(rendered) == {(0, 1)}
