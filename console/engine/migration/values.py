"""Row-event values as python-mysql-replication decodes them, turned into
the values the ghost must be sent (pure; unit tested).

The library's decoding is lossy or shaped for display in places, and the
apply sends what it decoded back to the server:

* ``BIT(n)`` comes as a string of '0'/'1' characters (sent as such: 1406
  "Data too long"): sent as the integer it spells;
* ``SET`` comes as a Python set, the empty set as ``None`` (its none
  source says "empty set"): sent as the comma list, the empty one as '';
* ``YEAR`` 0000 comes as 1900 (the library adds 1900 to the stored byte;
  1900 is no valid YEAR): sent as 0;
* zero dates (``0000-00-00``, only where the sql_mode allowed them) come as
  ``None`` with an "out of ... range" none source: sent as the zero date
  (a date with only some zero parts, e.g. ``2024-00-10``, is decoded to the
  same ``None``: it becomes the zero date too);
* a negative ``TIME`` with a fraction comes wrong: -00:00:01.250 as
  -00:00:01.750 (the library negates the integer part, stored one second
  lower, and adds the stored, negative fraction): corrected;
* a zero ``TIMESTAMP`` comes as 1970-01-01 00:00:00 (``utcfromtimestamp(0)``):
  sent as the zero date.  Other TIMESTAMPs come as naive UTC datetimes: the
  apply's session runs with ``time_zone='+00:00'`` (``session.py``).

Everything else (integers signed and unsigned, DECIMAL, FLOAT/DOUBLE,
DATETIME/TIME with fractions, ENUM, JSON, text in its character set, binary
strings as bytes) passes as decoded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_ZERO_DATE = {"date": "0000-00-00", "datetime": "0000-00-00 00:00:00",
              "timestamp": "0000-00-00 00:00:00"}
_OUT_OF_RANGE = ("out of date range", "out of datetime range", "out of datetime2 range")
_EPOCH = dt.datetime(1970, 1, 1)
_NO_TIME = dt.timedelta(0)
_US = 1_000_000


def negative_time(decoded: dt.timedelta) -> dt.timedelta:
    """The true value of a negative TIME the library decoded.  TIME2
    stores a negative value with a fraction as (integer part - 1, fraction
    + 1 s); the library returns -(|stored integer part| + signed fraction),
    right only when there is no fraction."""
    x = -(decoded // dt.timedelta(microseconds=1))      # |decoded| in microseconds
    if x % _US == 0:
        return decoded
    whole = -(-x // _US)                                 # |stored integer part|, seconds
    return dt.timedelta(microseconds=x - 2 * whole * _US + _US)


def type_kind(column_type: str) -> str:
    """``bit(10)`` -> ``bit``; ``int(10) unsigned`` -> ``int``."""
    return column_type.split("(", 1)[0].split()[0].lower() if column_type.strip() else ""


def fix_value(kind: str, value: Any, none_source: str = "") -> Any:
    """The value to send for a decoded ``value`` of a column of ``kind``."""
    if value is None:
        if kind == "set" and none_source == "empty set":
            return ""
        if kind in _ZERO_DATE and none_source in _OUT_OF_RANGE:
            return _ZERO_DATE[kind]
        return None
    if kind == "bit" and isinstance(value, str):
        return int(value, 2) if value else 0
    if kind == "set" and isinstance(value, (set, frozenset)):
        return ",".join(sorted(value))
    if kind == "year" and value == 1900:
        return 0
    if kind == "time" and isinstance(value, dt.timedelta) and value < _NO_TIME:
        return negative_time(value)
    if kind == "timestamp" and value == _EPOCH:
        return _ZERO_DATE[kind]
    return value


# kinds whose decoded values need ``fix_value``; other columns pass as they are
FIXED_KINDS = frozenset({"bit", "set", "year", "date", "datetime", "timestamp", "time"})


class RowFixer:
    """Applies ``fix_value`` to the columns of a row image that need it."""

    def __init__(self, columns: Iterable[tuple[str, str]]):
        """``columns``: (name, type as SHOW COLUMNS prints it) of the
        original table."""
        self.kinds = {n: k for n, t in columns if (k := type_kind(t)) in FIXED_KINDS}

    def fix(self, values: Mapping[str, Any], none_sources: Mapping[str, str] | None = None) -> dict:
        out = dict(values)
        ns = none_sources or {}
        for name, kind in self.kinds.items():
            if name in out:
                out[name] = fix_value(kind, out[name], ns.get(name, ""))
        return out

    def ops(self, kind: str, rows: list[dict]) -> list[tuple]:
        """Decoded rows of one event -> apply ops: ("ins", after), ("del",
        before), ("upd", before, after)."""
        f: Callable = self.fix
        if kind == "upd":
            return [("upd", f(r["before_values"], r.get("before_none_sources")),
                     f(r["after_values"], r.get("after_none_sources"))) for r in rows]
        return [(kind, f(r["values"], r.get("none_sources"))) for r in rows]
