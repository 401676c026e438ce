"""Keeping a DataTable in step with a snapshot: rows keyed, cells updated in place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.widgets import DataTable


def sync_rows(table: DataTable, columns: Sequence[tuple[str, str]],
              rows: Iterable[tuple[str, dict[str, object]]]) -> None:
    """Update existing rows cell by cell, add new ones, drop vanished ones;
    the cursor stays where the operator left it."""
    wanted = []
    for key, cells in rows:
        wanted.append(key)
        if key in table.rows:
            for col, val in cells.items():
                table.update_cell(key, col, val, update_width=True)
        else:
            table.add_row(*[cells[c] for c, _ in columns], key=key)
    for key in [k.value for k in list(table.rows)]:
        if key not in wanted:
            table.remove_row(key)
