"""Pure SQL builders for the migration: quoting, key-range predicates,
row statements and checksum expressions.  No I/O here (unit tested)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


def qi(name: str) -> str:
    """Quote an identifier with backticks."""
    return "`" + name.replace("`", "``") + "`"


def qt(db: str, table: str) -> str:
    return f"{qi(db)}.{qi(table)}"


def col_list(cols: Sequence[str]) -> str:
    return ", ".join(qi(c) for c in cols)


def cmp_tuple(cols: Sequence[str], vals: Sequence[Any], op: str) -> tuple[str, list[Any]]:
    """``(cols) op (vals)`` for op in > >= < <=, expanded into ORs so every
    server's range optimizer uses the index:
    ``(a > 1) OR (a = 1 AND b > 2)``; the last column takes the inclusive op."""
    assert op in (">", ">=", "<", "<="), op
    strict = op[0]
    parts, params = [], []
    n = len(cols)
    for i in range(n):
        eqs = [f"{qi(cols[j])} = %s" for j in range(i)]
        last_op = op if i == n - 1 else strict
        cond = " AND ".join(eqs + [f"{qi(cols[i])} {last_op} %s"])
        parts.append(f"({cond})")
        params.extend(list(vals[:i]) + [vals[i]])
    return "(" + " OR ".join(parts) + ")", params


def key_range(cols: Sequence[str], lo: Sequence[Any] | None, hi: Sequence[Any]) -> tuple[str, list[Any]]:
    """``lo < key <= hi`` (no lower bound when ``lo`` is None)."""
    hs, hp = cmp_tuple(cols, hi, "<=")
    if lo is None:
        return hs, hp
    ls, lp = cmp_tuple(cols, lo, ">")
    return f"{ls} AND {hs}", lp + hp


def key_eq(cols: Sequence[str], vals: Sequence[Any]) -> tuple[str, list[Any]]:
    return " AND ".join(f"{qi(c)} <=> %s" for c in cols), list(vals)


def key_in(cols: Sequence[str], keys: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """Rows whose key is one of ``keys`` (a non-empty list of key tuples):
    ``a IN (...)`` for one column, ORs of ANDs for a composite key."""
    assert keys, "key_in needs at least one key"
    if len(cols) == 1:
        return f"{qi(cols[0])} IN (" + ", ".join(["%s"] * len(keys)) + ")", [k[0] for k in keys]
    one = "(" + " AND ".join(f"{qi(c)} = %s" for c in cols) + ")"
    return "(" + " OR ".join([one] * len(keys)) + ")", [v for k in keys for v in k]


_INT = re.compile(r"(tiny|small|medium|big)?int(\(\d+\))?( unsigned)?$")
_TEMPORAL = re.compile(r"(datetime|timestamp|time)(\((\d)\))?$")
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)( unsigned)?$")


def cast_target(source_type: str, target_type: str) -> str | None:
    """The ``CAST(... AS target)`` that gives an original column's value the
    text the ghost's column of ``target_type`` stores for it (types as
    ``SHOW COLUMNS`` prints them, lower case), or None where the text is the
    same without one (same type, integer to integer, any string target) or
    no CAST expresses the conversion (ENUM, SET, BIT, YEAR, JSON, ZEROFILL,
    FLOAT(M,D)...: compared as text, as before).  Without it a DATETIME ->
    DATETIME(6) or FLOAT -> DOUBLE change mismatched on every row."""
    if source_type == target_type or "zerofill" in target_type:
        return None
    if m := _INT.match(target_type):
        if _INT.match(source_type) and "zerofill" not in source_type:
            return None                 # the same digits (out of range fails the copy)
        return "UNSIGNED" if m.group(3) else "SIGNED"
    if m := _TEMPORAL.match(target_type):
        kind = "TIME" if m.group(1) == "time" else "DATETIME"
        return f"{kind}({m.group(3) or 0})"
    if target_type == "date":
        return "DATE"
    if m := _DECIMAL.match(target_type):
        return f"DECIMAL({m.group(1)},{m.group(2)})"
    if target_type in ("double", "double unsigned", "real"):
        return "DOUBLE"
    if target_type in ("float", "float unsigned"):
        return "FLOAT"
    return None


def checksum_expr(cols: Sequence[str], string_cols: set[str],
                  nullable: set[str] | None = None, casts: dict[str, str] | None = None) -> str:
    """The CRC32 of one row's text over ``cols``, for ``checksum_sql``.
    ``string_cols`` are converted to utf8mb4 so a character set change does
    not look like a mismatch; ``casts`` (column -> CAST target, see
    ``cast_target``) give a column the text of its new type; NULLs of the
    ``nullable`` columns (default: all) are marked, so NULL and '' differ and
    a NULL cannot move between columns unseen (CONCAT_WS skips NULLs)."""
    parts = column_exprs(cols, string_cols, casts)
    marked = [c for c in cols if nullable is None or c in nullable]
    if marked:
        parts.append("CONCAT(" + ", ".join(f"ISNULL({qi(c)})" for c in marked) + ")")
    return f"CRC32(CONCAT_WS('#', {', '.join(parts)}))"


def column_exprs(cols: Sequence[str], string_cols: set[str],
                 casts: dict[str, str] | None = None) -> list[str]:
    """Each column's value as the checksum compares it (``checksum_expr``)."""
    parts = []
    for c in cols:
        e = qi(c)
        if c in string_cols:
            e = f"CONVERT({e} USING utf8mb4)"
        if casts and c in casts:
            e = f"CAST({e} AS {casts[c]})"
        parts.append(e)
    return parts


def checksum_sql(row_expr: str, source: str, where: str, locked: bool = False) -> str:
    """An order-independent checksum of a row set: row count, sum and xor of
    the rows' CRC32.  (XOR alone, pt-table-checksum's default, let a lost
    write through in the 10k-row write-load test: keep both.)  The row hash
    is computed once per row in a derived table (LIMIT keeps the server from
    merging it back and computing it twice, for SUM and for BIT_XOR)."""
    lock = " LOCK IN SHARE MODE" if locked else ""
    return (f"SELECT COUNT(*), COALESCE(SUM(h), 0), COALESCE(BIT_XOR(h), 0) FROM "
            f"(SELECT {row_expr} AS h FROM {source} WHERE {where} "
            f"LIMIT 18446744073709551615{lock}) AS rows_")


def locked_before(table: str, other: str) -> bool:
    """Does a multi-table RENAME take the metadata lock of ``table`` before
    the one of ``other``?  It sorts its requests by MDL key: the schema's
    name, a NUL, the table's name, a NUL, compared bytewise (lower-cased
    first where lower_case_table_names is set, so both spellings are checked)."""
    def key(n: str) -> bytes:
        return n.encode() + b"\0"
    return key(table) < key(other) and key(table.lower()) < key(other.lower())
