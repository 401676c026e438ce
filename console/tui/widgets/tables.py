"""Keeping a DataTable in step with a snapshot: rows keyed, cells updated in
place; a table that keeps its key columns and drops the others first when
it is narrow."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual import events
from textual.widgets import DataTable


def sync_rows(table: DataTable, columns: Sequence[tuple[str, str]],
              rows: Iterable[tuple[str, dict[str, object]]]) -> None:
    """Update existing rows cell by cell, add new ones, drop vanished ones;
    the cursor stays where the operator left it.  Only the table's present
    columns are filled (a narrow table has dropped some)."""
    shown = [c for c, _ in columns if c in table.columns]
    wanted = []
    for key, cells in rows:
        wanted.append(key)
        if key in table.rows:
            for col in shown:
                table.update_cell(key, col, cells.get(col, ""), update_width=True)
        else:
            table.add_row(*[cells.get(c, "") for c in shown], key=key)
    for key in [k.value for k in list(table.rows)]:
        if key not in wanted:
            table.remove_row(key)


def fit_columns(columns: Sequence[tuple[str, str, int]], priority: Sequence[str],
                width: int) -> list[tuple[str, str]]:
    """The columns that fit ``width`` (each takes its width + 2 of padding),
    taken in ``priority`` order, shown in their declared order; the first
    priority column always stays."""
    widths = {k: w + 2 for k, _, w in columns}
    keep: set[str] = set()
    used = 0
    for k in priority:
        if keep and used + widths[k] > width:
            continue
        keep.add(k)
        used += widths[k]
    return [(k, label) for k, label, _ in columns if k in keep]


class ResponsiveTable(DataTable):
    """A DataTable over ``COLUMNS`` (key, label, usual width) that shows the
    columns of ``PRIORITY`` fitting its width; ``sync(rows)`` fills it."""

    COLUMNS: tuple[tuple[str, str, int], ...] = ()
    PRIORITY: tuple[str, ...] = ()

    def __init__(self, **kw):
        super().__init__(**kw)
        self._rows: list[tuple[str, dict[str, object]]] = []
        self._shown: list[tuple[str, str]] = []

    @property
    def columns_all(self) -> list[tuple[str, str]]:
        return [(k, label) for k, label, _ in self.COLUMNS]

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self._layout(self.size.width or 200)

    def on_resize(self, event: events.Resize) -> None:
        self._layout(event.size.width)

    def _layout(self, width: int) -> None:
        shown = fit_columns(self.COLUMNS, self.PRIORITY or [k for k, _, _ in self.COLUMNS], width)
        if shown == self._shown:
            return
        self._shown = shown
        cursor = self.cursor_row
        self.clear(columns=True)
        for key, label in shown:
            self.add_column(label, key=key)
        sync_rows(self, self.columns_all, self._rows)
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))

    def sync(self, rows: Iterable[tuple[str, dict[str, object]]]) -> None:
        before = [k.value for k in self.rows]
        self._rows = list(rows)
        sync_rows(self, self.columns_all, self._rows)
        if [k for k, _ in self._rows] != before:
            # rows that come or go can leave the header (or a row) drawn at
            # the column widths of before: Textual keys its cell cache by an
            # update count, not by width.  Draw every cell again once the
            # new widths are known.
            self.call_after_refresh(self.notify_style_update)
