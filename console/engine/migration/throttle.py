"""Throttling: parse load thresholds and decide, from one observation,
whether the copy and apply must wait and why.  ``decide`` is pure (unit
tested); ``Observer`` gathers the observation from real servers."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from console.kinds.load import ThrottleConfigError


def check_load(conn, load: Mapping[str, float], flag: str) -> None:
    """Every variable of ``load`` must be a numeric global status variable
    of the server (a misspelt ``Threads_runing=50`` never throttled: the
    name was looked up each round and never found)."""
    if not load:
        return
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS")
        have = {str(k).lower(): (str(k), v) for k, v in cur.fetchall()}
    for name in load:
        got = have.get(name.lower())
        if got is None:
            close = difflib.get_close_matches(name.lower(), list(have), n=1)
            hint = f" (did you mean {have[close[0]][0]}?)" if close else ""
            raise ThrottleConfigError(f"{flag}: {name} is not a status variable of this server "
                                      f"(SHOW GLOBAL STATUS){hint}; fix the name")
        try:
            float(got[1])
        except (TypeError, ValueError):
            raise ThrottleConfigError(f"{flag}: status variable {got[0]} is not a number (it is "
                                      f"{got[1]!r}); name a numeric one") from None


def throttle_value(row: Any) -> int:
    """A throttle query's result row as a number (> 0 throttles); no row is
    0.  Raises ValueError when the first column is no number."""
    if not row or row[0] is None:
        return 0
    v = row[0]
    if isinstance(v, (bytes, bytearray)):
        v = v.decode("utf-8", "replace")
    return int(float(v)) if isinstance(v, str) else int(v)


def check_throttle_query(conn, sql: str, flag: str = "--throttle-query") -> None:
    """Run the throttle query once: one that fails or returns no number
    throttled never (its error was swallowed every round)."""
    if not (sql or "").strip():
        return
    from console.mysql.connection import describe_error

    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
    except Exception as e:  # noqa: BLE001 - any failure is the query's
        raise ThrottleConfigError(f"{flag} {' '.join(sql.split())!r} fails: {describe_error(e)}; "
                                  f"fix the query (it must return a number; > 0 throttles)") from None
    try:
        throttle_value(row)
    except (TypeError, ValueError):
        raise ThrottleConfigError(f"{flag} {' '.join(sql.split())!r} returns {row[0]!r}, not a "
                                  f"number; it must return a number (> 0 throttles)") from None


@dataclass(frozen=True)
class Observation:
    status: Mapping[str, float] = field(default_factory=dict)   # global status values
    replica_lags: Mapping[str, float | None] = field(default_factory=dict)  # seconds; None = unknown
    throttle_query_value: int | None = None
    throttle_query_error: str = ""        # the throttle query failed this round (throttles)
    flag_file_exists: bool = False
    manual: bool = False


@dataclass(frozen=True)
class Verdict:
    reason: str = ""          # empty: go
    critical: str = ""        # non-empty: critical load reached

    @property
    def throttled(self) -> bool:
        return bool(self.reason)


# what throttles, in a word: the ``reason`` label of the throttled metric
# and ``MigrationDetail.throttle_kind`` (the reason's text carries values)
REASON_KINDS = (
    ("critical-load ", "critical-load"),
    ("manual throttle", "manual"),
    ("throttle flag file", "flag-file"),
    ("lag of ", "replica-lag"),
    ("max-load ", "max-load"),
    ("throttle-query ", "throttle-query"),
    ("hibernating", "hibernating"),
)


def reason_kind(reason: str) -> str:
    """The kind of a throttle reason (``decide``'s or the hibernation's):
    "" when not throttled, "other" for a reason of no known kind."""
    if not reason:
        return ""
    for prefix, kind in REASON_KINDS:
        if reason.startswith(prefix):
            return kind
    return "other"


def decide(obs: Observation, *, max_lag_millis: int, max_load: Mapping[str, float],
           critical_load: Mapping[str, float]) -> Verdict:
    for name, limit in critical_load.items():
        v = obs.status.get(name)
        if v is not None and v >= limit:
            msg = f"critical-load {name}={v:g} >= {limit:g}"
            return Verdict(msg, msg)
    if obs.manual:
        return Verdict("manual throttle (operator)")
    if obs.flag_file_exists:
        return Verdict("throttle flag file exists")
    for name, lag in sorted(obs.replica_lags.items()):
        if lag is None:
            return Verdict(f"lag of {name} unknown")
        if lag * 1000 > max_lag_millis:
            return Verdict(f"lag of {name} {lag * 1000:.0f}ms > max-lag-millis {max_lag_millis}")
    for name, limit in max_load.items():
        v = obs.status.get(name)
        if v is not None and v >= limit:
            return Verdict(f"max-load {name}={v:g} >= {limit:g}")
    if obs.throttle_query_error:
        return Verdict(f"throttle-query error: {obs.throttle_query_error}")
    if obs.throttle_query_value:
        return Verdict(f"throttle-query returned {obs.throttle_query_value}")
    return Verdict()


class Observer:
    """Reads one ``Observation``: status variables on the primary, the
    heartbeat age on each control replica, the throttle query and flag file."""

    def __init__(self, primary_conn_factory, replica_conn_factories: Mapping[str, object],
                 heartbeat_sql: str, lag_readers: Mapping[str, object] | None = None):
        self._pf = primary_conn_factory
        self._rf = dict(replica_conn_factories)
        self._conns: dict[str, object] = {}
        self._hb_sql = heartbeat_sql
        # name -> fn(conn) -> seconds or None, for a lag the heartbeat cannot
        # show (a migration on a replica: its own lag behind its master)
        self._readers = dict(lag_readers or {})

    def _conn(self, name: str, factory):
        c = self._conns.get(name)
        if c is None:
            c = factory()
            self._conns[name] = c
        return c

    def _drop(self, name: str) -> None:
        c = self._conns.pop(name, None)
        if c is not None:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass

    def observe(self, names: list[str], throttle_query: str, flag_file: str | None,
                manual: bool) -> Observation:
        status: dict[str, float] = {}
        tq = None
        tq_error = ""
        asked = {n.lower(): n for n in names}      # the server's spelling -> the operator's
        try:
            c = self._conn("primary", self._pf)
            with c.cursor() as cur:
                if names:
                    cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN (" +
                                ",".join(["%s"] * len(names)) + ")", names)
                    for k, v in cur.fetchall():
                        try:
                            status[asked.get(str(k).lower(), str(k))] = float(v)
                        except (TypeError, ValueError):
                            pass
            if throttle_query:
                try:
                    with c.cursor() as cur:
                        cur.execute(throttle_query)
                        tq = throttle_value(cur.fetchone())
                except Exception as e:  # noqa: BLE001 - it throttles (gh-ost's way) and says why
                    tq_error = " ".join(str(e).split())[:200] or type(e).__name__
                    raise
        except Exception:  # noqa: BLE001 - a lost connection is retried next round
            self._drop("primary")
        lags: dict[str, float | None] = {}
        for name, f in self._rf.items():
            try:
                c = self._conn(name, f)
                if name in self._readers:
                    lags[name] = self._readers[name](c)
                    continue
                with c.cursor() as cur:
                    cur.execute(self._hb_sql)
                    row = cur.fetchone()
                lags[name] = float(row[0]) if row and row[0] is not None else None
            except Exception:  # noqa: BLE001
                self._drop(name)
                lags[name] = None
        return Observation(status=status, replica_lags=lags, throttle_query_value=tq,
                           throttle_query_error=tq_error,
                           flag_file_exists=bool(flag_file) and os.path.exists(flag_file),
                           manual=manual)

    def close(self) -> None:
        for n in list(self._conns):
            self._drop(n)

