"""Table data as SQL that loads back byte for byte and value for value.

Why not mariadb-dump's data: the server prints a FLOAT with 6 significant
digits in the text protocol (123456792 comes out as 123457000) and no
mariadb-dump option changes that.  Here every column is read in a form that
is exact and written as a literal that converts back to the same value:

* FLOAT/DOUBLE: ``CAST(c AS DOUBLE)`` (the server prints a double with the
  shortest text that converts back to it; a float widens to a double
  exactly), written quoted so ``-0`` stays negative zero.
* BIT: ``CAST(c AS UNSIGNED)``; integers, DECIMAL, YEAR: as the server prints them.
* binary strings, BLOBs, geometry: ``X'<hex>'`` of the stored bytes.
* character strings, ENUM, SET, JSON: ``_<charset> X'<hex>'`` of the stored
  bytes (read with ``character_set_results = NULL``: no conversion).
* dates and times (zero and partial dates included, read with
  ``time_zone = '+00:00'``), INET6, UUID and any other type: their text, quoted.

Generated columns are left out (the server computes them); invisible ones
are named and so included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

NUMBER = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "year"})
FLOATING = frozenset({"float", "double"})
BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
                    "geometry", "point", "linestring", "polygon", "multipoint",
                    "multilinestring", "multipolygon", "geometrycollection"})
TEXT = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
                  "json"})
STATEMENT_BYTES = 1 << 20          # rows per INSERT: up to about this many bytes
_CHARSET = re.compile(r"[a-z0-9_]+")

# session settings the data is loaded with (mariadb-dump's, stricter: a value
# that does not fit is an error, never silently changed)
LOAD_SETTINGS = (b"SET NAMES utf8mb4;\n"
                 b"SET TIME_ZONE='+00:00';\n"
                 b"SET FOREIGN_KEY_CHECKS=0;\n"
                 b"SET UNIQUE_CHECKS=0;\n"
                 b"SET SQL_MODE='NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES';\n"
                 b"SET SQL_NOTES=0;\n")
LOAD_END = b"SET UNIQUE_CHECKS=1;\nSET FOREIGN_KEY_CHECKS=1;\n"


def quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str            # information_schema.COLUMNS.DATA_TYPE
    charset: str | None = None
    generated: bool = False

    @property
    def kind(self) -> str:
        t = self.data_type.lower()
        if t in NUMBER:
            return "number"
        if t in FLOATING:
            return "floating"
        if t == "bit":
            return "bit"
        if t in BINARY or (t in TEXT and self.charset in (None, "binary")):
            return "binary"
        if t in TEXT:
            return "text"
        return "quoted"

    def select(self) -> str:
        """The expression this column is read with."""
        q = quote_name(self.name)
        if self.kind == "floating":
            return f"CAST({q} AS DOUBLE)"
        if self.kind == "bit":
            return f"CAST({q} AS UNSIGNED)"
        return q

    def encoder(self) -> Callable[[bytes | None], bytes]:
        """Raw value as read (bytes, or None for NULL) -> SQL literal."""
        kind = self.kind
        if kind in ("number", "bit"):
            return lambda v: b"NULL" if v is None else v
        if kind == "binary":
            return lambda v: b"NULL" if v is None else b"X'" + v.hex().encode() + b"'"
        if kind == "text":
            cs = (self.charset or "").lower()
            if not _CHARSET.fullmatch(cs):
                raise ValueError(f"column {self.name}: unexpected character set {self.charset!r}")
            intro = f"_{cs} X'".encode()
            return lambda v: b"NULL" if v is None else intro + v.hex().encode() + b"'"
        return lambda v: b"NULL" if v is None else quote_bytes(v)


def quote_bytes(v: bytes) -> bytes:
    """A quoted string literal (default sql_mode: backslash escapes)."""
    return b"'" + v.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\0", b"\\0") + b"'"


def select_sql(db: str, table: str, columns: list[Column]) -> str:
    cols = [c for c in columns if not c.generated]
    return f"SELECT {', '.join(c.select() for c in cols)} FROM {quote_name(db)}.{quote_name(table)}"


def insert_statements(db: str, table: str, columns: list[Column],
                      rows: Iterable[tuple], limit: int = STATEMENT_BYTES) -> Iterable[bytes]:
    """Multi-row INSERT statements (each ending in ``;\\n``) for ``rows`` read
    with ``select_sql``."""
    cols = [c for c in columns if not c.generated]
    head = (f"INSERT INTO {quote_name(db)}.{quote_name(table)} "
            f"({','.join(quote_name(c.name) for c in cols)}) VALUES ").encode()
    enc = [c.encoder() for c in cols]
    parts: list[bytes] = []
    size = 0
    for row in rows:
        t = b"(" + b",".join(e(v) for e, v in zip(enc, row, strict=True)) + b")"
        if parts and size + len(t) > limit:
            yield head + b",\n".join(parts) + b";\n"
            parts, size = [], 0
        parts.append(t)
        size += len(t) + 2
    if parts:
        yield head + b",\n".join(parts) + b";\n"
