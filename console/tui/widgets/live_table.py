"""A DataTable that is redrawn from scratch every refresh yet keeps the operator's place: the cursor stays on
the same row key, rows that did not change cost nothing, and the screen's `/` filter hides what does not
match.

Rows that did not change cost nothing to paint either. Textual's DataTable keys every render cache (cells,
row lines, screen lines) on one update counter that any `update_cell` bumps, so one ticking age re-renders
every visible cell of the table through rich: on the Overview and the Lag screen that was most of a redraw's
paint (about 1 ms per cell on the test machine). LiveTable keys its row lines on the row's own version
instead (bumped by `update_cell`, the only change `show` makes to an unchanged row list) plus everything
else a row's look depends on (its index, whether the cursor or the mouse is on it, the widths, the styles);
any other change to the table (rows added or cleared, a column widened) still renders everything again."""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

Cell = str | Text | int | float | None
SegmentLines = list[list[Segment]]
Row = tuple[str, Sequence[Cell]]  # (row key, cells)


class LiveTable(DataTable[Cell]):
    """`show(rows)` replaces every row; the cursor follows its row key; identical input is skipped."""

    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    LiveTable.-stale { opacity: 60%; }
    """

    def __init__(self, *columns: str, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._columns = columns
        self._column_keys: list[ColumnKey] = []
        self._shown: list[tuple[str, tuple[str, ...]]] = []
        self.filter_text = ""
        self._row_versions: dict[str, int] = {}  # bumped by update_cell: what a row's cached lines depend on
        self._cell_versions: dict[tuple[str, str], int] = {}  # the same per cell
        self._cell_updates = 0  # how many of DataTable's `_update_count` bumps were update_cell's
        self._cells: LRUCache[tuple[object, ...], SegmentLines] = LRUCache(10000)
        self._row_lines: LRUCache[tuple[object, ...], tuple[SegmentLines, SegmentLines]] = LRUCache(1000)

    def on_mount(self) -> None:
        # Keyed by position: a column added without a key has a key whose value is None, and a cell's version
        # (`_cell_versions`, keyed on the values) was then shared by every cell of its row, so one changed cell
        # rendered the whole row again.
        self._column_keys = self.add_columns(*((label, str(index)) for index, label in enumerate(self._columns)))

    def show(self, rows: Sequence[Row]) -> None:
        """Replace the rows. The same keys in the same order (a refresh: ages ticked, counts moved) update only
        the cells that changed, which keeps a 1,000-row table cheap to refresh; otherwise the rows are rebuilt
        and the cursor put back on its key."""
        needle = self.filter_text.lower()
        kept = [(key, cells) for key, cells in rows
                if not needle or needle in " ".join(_plain(c) for c in cells).lower()]
        shown = [(key, tuple(_plain(c) + _style(c) for c in cells)) for key, cells in kept]
        if [k for k, _ in shown] == [k for k, _ in self._shown] and self.row_count == len(shown):
            for (key, cells), (_, now), (_, before) in zip(kept, shown, self._shown, strict=True):
                if now == before:
                    continue
                for column, cell, new, old in zip(self._column_keys, cells, now, before, strict=False):
                    if new != old:
                        text = _text(cell)
                        self.update_cell(key, column, text, update_width=self._widens(column, text))
            self._shown = shown
            return
        self._shown = shown
        current = self.selected_key
        self.clear()
        self._row_versions.clear()  # every row is new: clear() changed what every cached line is keyed on
        self._cell_versions.clear()
        for key, cells in kept:
            self.add_row(*map(_text, cells), key=key)
        if current is not None and current in self.rows:
            self.move_cursor(row=self.get_row_index(current), animate=False)

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: Cell, *,
                    update_width: bool = False) -> None:
        super().update_cell(row_key, column_key, value, update_width=update_width)
        row = (row_key.value if isinstance(row_key, RowKey) else row_key) or ""
        column = (column_key.value if isinstance(column_key, ColumnKey) else column_key) or ""
        self._row_versions[row] = self._row_versions.get(row, 0) + 1
        self._cell_versions[row, column] = self._cell_versions.get((row, column), 0) + 1
        self._cell_updates += 1

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int, cursor: bool = False,
                     hover: bool = False) -> SegmentLines:
        """DataTable's, cached on the cell's own version (a changed row renders only its changed cells)."""
        row_key = self._row_locations.get_key(row_index) if row_index >= 0 else None
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cell = (row_key.value or "", column_key.value or "")
        key = (cell, self._cell_versions.get(cell, 0), row_index, column_index, base_style, width, cursor, hover,
               self._show_hover_cursor, self._pseudo_class_state, self._update_count - self._cell_updates,
               self.app._css_update_count)
        lines = self._cells.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cells[key] = lines
        return lines

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style, cursor_location: Coordinate,
                            hover_location: Coordinate) -> tuple[SegmentLines, SegmentLines]:
        """DataTable's, cached per row: on a row's version, not on the table's update counter (the module's
        docstring). With a row cursor a row's look depends on the cursor and the mouse only through whether they
        are on it; the header row keeps DataTable's own key (the exact coordinates)."""
        if self.cursor_type != "row":
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        index = self._row_locations.get(row_key)
        header = row_key is self._header_row_key or index is None
        key = (row_key, line_no, base_style, index,
               cursor_location if header else cursor_location.row == index,
               hover_location if header else hover_location.row == index,
               self.show_cursor, self._show_hover_cursor, self._pseudo_class_state, self.size.width,
               self._update_count - self._cell_updates, self._row_versions.get(row_key.value or "", 0),
               self.app._css_update_count)
        lines = self._row_lines.get(key)
        if lines is None:
            lines = super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
            self._row_lines[key] = lines
        return lines

    def _widens(self, column: ColumnKey, cell: Text) -> bool:
        """Whether `cell` is wider than its column. Only then is the width updated with it: a column grows to
        fit, and never shrinks while the table is shown (DataTable measures every cell of a column again for
        each narrower cell it is given: 1,000 ticking ages made that a million measures per refresh)."""
        return cell.cell_len > self.columns[column].content_width

    @property
    def selected_key(self) -> str | None:
        """The row key under the cursor (None on an empty table)."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:  # the cursor sits past the rows while the table refills
            return None
        return key.value


def _text(cell: Cell) -> Text:
    """A cell as the Text the table draws. DataTable parses a str cell as markup on every render (a reason
    such as `[Errno 111] refused` would lose its brackets) and renders a Text about twice as fast: a refresh
    renders every visible cell again."""
    if isinstance(cell, Text):
        return cell
    if cell is None or cell == "":
        return Text("-", end="", no_wrap=True)
    return Text(f"{cell:.2f}" if isinstance(cell, float) else str(cell), end="", no_wrap=True)


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else "" if cell is None else str(cell)


def _style(cell: Cell) -> str:
    return str(cell.style) if isinstance(cell, Text) else ""
