"""A DataTable that is redrawn from scratch every refresh yet keeps the operator's place: the cursor stays on
the same row key, rows that did not change cost nothing, and the screen's `/` filter hides what does not
match."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey

Cell = str | Text | int | float | None
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

    def on_mount(self) -> None:
        self._column_keys = self.add_columns(*self._columns)

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
        for key, cells in kept:
            self.add_row(*map(_text, cells), key=key)
        if current is not None and current in self.rows:
            self.move_cursor(row=self.get_row_index(current), animate=False)

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
