"""Updating a DataTable in place by row key, so live numbers never flicker."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

Cells = tuple[RenderableType, ...]


def _pad(cell: RenderableType) -> RenderableType:
    """One space before every cell instead of DataTable's two-sided padding: an 80-column
    terminal then fits nine numeric columns."""
    if isinstance(cell, Text):
        padded = Text(" ", style="", justify=cell.justify, no_wrap=True)
        padded.append_text(cell)
        return padded
    if isinstance(cell, str):
        return " " + cell
    return cell


class LiveTable(DataTable[RenderableType]):
    """A DataTable fed whole row lists; only changed cells are touched."""

    def __init__(self, columns: Sequence[tuple[str, str]], *, right: Sequence[str] = (), id: str | None = None) -> None:
        super().__init__(cursor_type="row", id=id, cell_padding=0, show_cursor=False)
        self._column_spec = list(columns)
        self._right = set(right)
        self._cells: dict[str, Cells] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for label, key in self._column_spec:
            self.add_column(Text(" " + label, justify="right" if key in self._right else "left"), key=key)

    def on_focus(self) -> None:
        self.show_cursor = True

    def on_blur(self) -> None:
        self.show_cursor = False

    def reset(self) -> None:
        self.clear(columns=True)
        self._cells.clear()
        self._order = []
        self._add_columns()

    def _wider(self, column: str, cell: RenderableType) -> bool:
        """Re-measure only when a value outgrows its column: that costs a layout pass."""
        width = cell.cell_len if isinstance(cell, Text) else len(str(cell))
        return width + 1 > self.columns[ColumnKey(column)].content_width

    @property
    def column_keys(self) -> list[str]:
        return [key for _, key in self._column_spec]

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return key.value

    def sync(self, rows: Sequence[tuple[str, Cells]]) -> None:
        """Make the table show exactly ``rows`` in that order, touching only what changed."""
        keys = [k for k, _ in rows]
        selected = self.selected_key
        with self.app.batch_update():
            wanted = set(keys)
            survivors = [k for k in self._order if k in wanted]
            new_keys = [k for k in keys if k not in self._cells]
            if survivors + new_keys != keys:
                # Order changed (paging, a retried job): rebuild, cheap for one page.
                self.clear()
                self._cells.clear()
                for key, cells in rows:
                    self.add_row(*map(_pad, cells), key=key)
                    self._cells[key] = cells
            else:
                for key in self._order:
                    if key not in wanted:
                        self.remove_row(key)
                        del self._cells[key]
                columns = self.column_keys
                for key, cells in rows:
                    old = self._cells.get(key)
                    if old is None:
                        self.add_row(*map(_pad, cells), key=key)
                    elif old != cells:
                        for col, before, after in zip(columns, old, cells, strict=True):
                            if before != after:
                                self.update_cell(key, col, _pad(after), update_width=self._wider(col, after))
                    self._cells[key] = cells
            self._order = keys
            if selected is not None and selected in self._cells:
                index = self.get_row_index(RowKey(selected))
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False, scroll=False)
