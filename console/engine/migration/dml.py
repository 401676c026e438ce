"""Turning decoded row events of the original table into statements on the
ghost (pure; unit tested).

insert -> ``REPLACE INTO ghost`` (consecutive inserts become one multi-row
statement); delete -> ``DELETE ... WHERE key``; update with the key
unchanged -> ``UPDATE ghost SET ... WHERE key`` (a row the copy has not
reached yet is left to the copy); update of the unique key -> delete of the
old key plus ``REPLACE`` of the new row.  Where the key is no unique index
of the ghost (a new key that contains it), every ``REPLACE`` is preceded by
a delete of its rows' keys.  Every statement sets rows to the
state the row image shows, so replaying a suffix of the stream after a
crash converges to the same content."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from console.engine.migration.sqlutil import col_list, key_eq, key_in, qi, qt

Op = tuple  # ("ins", after) | ("del", before) | ("upd", before, after)


class DmlBuilder:
    def __init__(self, database: str, ghost: str, shared: Sequence[tuple[str, str]],
                 key_cols: Sequence[str], ghost_key_cols: Sequence[str], ghost_unique: bool = True):
        self.target = qt(database, ghost)
        # the key is no unique index of the ghost (the leading columns of one):
        # a REPLACE would not replace the row of the same key, so every row
        # written is first deleted by its key
        self.ghost_unique = ghost_unique
        self.shared = list(shared)
        self.key = list(key_cols)
        self.gkey = list(ghost_key_cols)
        self.gcols = [g for _, g in self.shared]
        # where the key's values sit in a row of ``_row`` (key columns are shared)
        orig = [o for o, _ in self.shared]
        self._key_pos = [orig.index(c) for c in self.key] if not ghost_unique else []

    def _row(self, values: Mapping[str, Any]) -> list[Any]:
        return [values.get(o) for o, _ in self.shared]

    def _keyvals(self, values: Mapping[str, Any]) -> list[Any]:
        return [values.get(c) for c in self.key]

    def _replace(self, rows: list[list[Any]]) -> tuple[str, list[Any]]:
        one = "(" + ", ".join(["%s"] * len(self.gcols)) + ")"
        sql = f"REPLACE INTO {self.target} ({col_list(self.gcols)}) VALUES " + ", ".join([one] * len(rows))
        return sql, [v for r in rows for v in r]

    def key_of(self, values: Mapping[str, Any]) -> tuple:
        """The original's unique-key value of a row image."""
        return tuple(self._keyvals(values))

    def _delete(self, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        w, p = key_eq(self.gkey, self._keyvals(values))
        return f"DELETE FROM {self.target} WHERE {w}", p

    def statements(self, ops: Sequence[Op]) -> list[tuple[str, list[Any]]]:
        out: list[tuple[str, list[Any]]] = []
        inserts: list[list[Any]] = []

        def flush_inserts():
            if inserts:
                if not self.ghost_unique:
                    w, p = key_in(self.gkey, [[r[i] for i in self._key_pos] for r in inserts])
                    out.append((f"DELETE FROM {self.target} WHERE {w}", p))
                out.append(self._replace(inserts))
                inserts.clear()

        for op in ops:
            kind = op[0]
            if kind == "ins":
                inserts.append(self._row(op[1]))
                continue
            flush_inserts()
            if kind == "del":
                out.append(self._delete(op[1]))
            elif kind == "upd":
                before, after = op[1], op[2]
                if self._keyvals(before) != self._keyvals(after):
                    out.append(self._delete(before))
                    inserts.append(self._row(after))
                    flush_inserts()
                else:
                    sets = ", ".join(f"{qi(g)} = %s" for g in self.gcols)
                    w, p = key_eq(self.gkey, self._keyvals(before))
                    out.append((f"UPDATE {self.target} SET {sets} WHERE {w}", self._row(after) + p))
            else:
                raise ValueError(f"unknown op {kind!r}")
        flush_inserts()
        return out
