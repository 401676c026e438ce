"""The row copy never changes a value.

A chunk is copied with ``INSERT IGNORE ... SELECT`` (a row the binlog apply
wrote first is kept), and IGNORE also turns the strict session's errors into
warnings: a partial zero date (``2020-00-01`` under NO_ZERO_IN_DATE) became
``0000-00-00``, a narrowing ``MODIFY`` truncated strings and clipped
integers, silently; the checksum then refused the cut-over naming only a key
and left the ghost behind.  Now the chunk's warnings are read before it
commits (gh-ost's ``--panic-on-warnings``): any warning but the expected
duplicate keys rolls the chunk back and stops the migration, naming the
table, the key of the first row it concerns and the server's error for that
row (the row is inserted once more without IGNORE, in the same transaction,
which is rolled back).  Notes (e.g. a DECIMAL rounded by the ALTER, which a
native ALTER rounds the same way) do not stop it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pymysql

from console.errors import UserError

# warnings of INSERT IGNORE ... SELECT that change no copied value: a key the
# apply wrote first (a row lost to a new unique key is the checksum's to
# find), an unsafe statement (statement-format copy), deprecated syntax
HARMLESS = frozenset({1062, 1592, 1287})

_AT_ROW = re.compile(r"\s+at row (\d+)\s*$")
_ZERO_DATE = re.compile(r"'(0000-00-00|\d{4}-00-\d\d|\d{4}-\d\d-00)")


class ValueChanged(UserError):
    """The copy would change a value: the migration stops and drops its own
    tables (``task.py``); exit code 2."""


DUPLICATE = 1062


def value_warnings(cur, duplicates: bool = False) -> list[tuple[int, str]]:
    """(code, message) of the last statement's warnings that may mean a
    changed value (none asked for when the server reported no warning);
    with ``duplicates`` (--panic-on-warnings) the duplicate-key warnings
    too: the caller finds out whether a row was lost to one."""
    if not getattr(cur, "warning_count", 0):
        return []
    cur.execute("SHOW WARNINGS")
    return [(int(code), str(msg)) for level, code, msg in cur.fetchall()
            if str(level) != "Note" and (int(code) not in HARMLESS
                                         or (duplicates and int(code) == DUPLICATE))]


def refuse_lost(warnings: list[tuple[int, str]], *, table: str, key: str) -> ValueChanged:
    """The one-line error for a chunk that lost a row to a duplicate on a
    key other than the chunking key (a new unique key: gh-ost's
    --panic-on-warnings)."""
    _, msg = warnings[0]
    more = f" (+{len(warnings) - 1} more duplicate warning(s) in its chunk)" if len(warnings) > 1 else ""
    return ValueChanged(f"copy: the row {key} of {table} would be lost: {_AT_ROW.sub('', msg)} "
                        f"(warning {DUPLICATE}): another row holds its value of that unique key "
                        f"(--panic-on-warnings){more}")


def describe_key(cols: Sequence[str], key: Sequence[Any]) -> str:
    return ", ".join(f"{c}={v!r}" for c, v in zip(cols, key, strict=True))


def refuse(warnings: list[tuple[int, str]], *, table: str, key: str | None,
           strict_error: str | None) -> ValueChanged:
    """The one-line error for a chunk whose copy would change values."""
    code, msg = warnings[0]
    reason = strict_error or f"{_AT_ROW.sub('', msg)} (warning {code})"
    where = f"the row {key} of {table}" if key else f"a row of {table}"
    hint = "; zero dates: --allow-zero-in-date keeps them" if _ZERO_DATE.search(reason) else ""
    more = f" (+{len(warnings) - 1} more warning(s) in its chunk)" if len(warnings) > 1 else ""
    return ValueChanged(f"copy: {where} cannot be copied unchanged: {reason}{more}{hint}")


def row_of_warning(msg: str) -> int | None:
    """The 1-based row of the INSERT ... SELECT a warning names (its
    SELECT's order, duplicates included), if any."""
    m = _AT_ROW.search(msg)
    return int(m.group(1)) if m else None


def strict_error(cur, delete: tuple[str, list], insert: tuple[str, list]) -> str | None:
    """The server's error for one row inserted without IGNORE (the strict
    session raises what IGNORE made a warning); run inside the chunk's
    transaction, which is rolled back afterwards."""
    try:
        cur.execute(*delete)
        cur.execute(*insert)
    except pymysql.MySQLError as e:
        if not e.args or e.args[0] in (1205, 1213):     # a lock, not the value: the warning says it
            return None
        text = str(e.args[1]) if len(e.args) > 1 else str(e)
        return f"{_AT_ROW.sub('', ' '.join(text.split()))} (error {e.args[0]})"
    return None
