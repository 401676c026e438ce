"""A migration survives a failover: when the server it writes to stops
being the primary (gone after a ``kill -9``, fenced and read-only after a
switchover, replicating from another host), the migration pauses, finds
the cluster's new primary, and continues there by GTID.

What the new primary holds is read from the changelog, which replicated
with everything else (``recorded``):

* ``applied-pos``: the GTID position of the source transactions whose
  changes the ghost holds, written by the binlog apply in the same
  transaction as each batch (``Applier._apply``), and at the start;
* ``copy-last``: the upper bound of the gap-free prefix of copy chunks,
  written right after the chunks it covers committed (``copyschedule``).

A batch or a chunk that committed on the old primary but never reached the
new one is therefore applied or copied again there (a chunk's
``INSERT IGNORE ... SELECT`` of the current rows and the apply's row-image
statements make a redo harmless); nothing the new primary holds is lost.

``FollowPrimary`` is mixed into ``MigrationTask`` (``task.py``): the guard
every writing connection passes (``_guard``), the probe of the watch loop
(``_probe_primary``), the decision after a failure (``_lost_primary``) and
the search for the new primary (``_follow_primary``)."""

from __future__ import annotations

import dataclasses
import json
import time

import pymysql

from console.engine.migration.checkpoint import dec, enc
from console.engine.migration.sqlutil import key_range, qt
from console.engine.migration.tables import check_tables, table_exists, write_changelog
from console.errors import UserError
from console.mysql.connection import Endpoint, close_quietly, connect, describe_error, query, scalar

APPLIED_POS = "applied-pos"     # changelog hint: the apply's GTID position, per batch
COPY_LAST = "copy-last"         # changelog hint: the copy's gap-free prefix (JSON key)

# client errors that say the server or the connection went away (or the
# server refuses writes): the primary may have moved
LOST_CODES = {1053, 1290, 1836, 1927, 2003, 2006, 2013, 2055}


class PrimaryLost(Exception):
    """The server the migration writes to is no longer the primary."""


def primary_problem(conn, replicating: bool = True) -> str:
    """'' when the connected server is writable and (``replicating``)
    replicates from nobody; else why it is not the primary."""
    if int(scalar(conn, "SELECT @@global.read_only") or 0):
        return "it is read-only"
    if not replicating:
        return ""
    for sql in ("SHOW ALL SLAVES STATUS", "SHOW REPLICA STATUS"):
        try:
            rows = query(conn, sql)
        except pymysql.MySQLError:
            continue
        if rows:
            r = rows[0]
            return f"it replicates from {r.get('Master_Host') or r.get('Source_Host')}:" \
                   f"{r.get('Master_Port') or r.get('Source_Port')}"
        return ""
    return ""


def probe(ep: Endpoint, replicating: bool = True) -> str:
    """'' when ``ep`` is a primary now, else why not (unreachable included).
    ``replicating=False``: a writable server that replicates is one too (the
    host a migration runs on may replicate from another cluster by design:
    only a host that became read-only or went away is lost)."""
    try:
        c = connect(ep, connect_timeout=2, read_timeout=5, write_timeout=5)
    except Exception as e:  # noqa: BLE001
        msg = str(describe_error(e))
        return f"unreachable ({msg.removeprefix(f'{ep.label}: ')})"
    try:
        return primary_problem(c, replicating)
    except Exception as e:  # noqa: BLE001
        return f"does not answer ({describe_error(e)})"
    finally:
        close_quietly(c)


def find_primary(candidates: tuple[Endpoint, ...]) -> tuple[Endpoint | None, dict[str, str]]:
    """The one candidate that is a primary now (None when none or several
    are), and why each of the others is not."""
    found, why = [], {}
    for ep in candidates:
        p = probe(ep)
        if p:
            why[ep.label] = p
        else:
            found.append(ep)
    if len(found) > 1:
        why.update({ep.label: "one of several writable hosts" for ep in found})
        return None, why
    return (found[0] if found else None), why


def recorded(conn, ins) -> tuple[str | None, tuple | None, bool]:
    """The changelog's ``applied-pos`` and ``copy-last`` on this server
    (None when absent), and whether ``copy-last`` was there."""
    rows = query(conn, f"SELECT hint, value FROM {qt(ins.database, ins.changelog)} WHERE hint IN (%s, %s)",
                 (APPLIED_POS, COPY_LAST))
    got = {r["hint"]: r["value"] for r in rows}
    last = dec(json.loads(got[COPY_LAST])) if COPY_LAST in got else None
    return got.get(APPLIED_POS), (tuple(last) if last is not None else None), COPY_LAST in got


def ghost_rows_upto(conn, ins, last) -> int:
    """The ghost's rows up to key ``last``: the copy's count once chunks the
    checkpoint did not see are found committed (``recorded``)."""
    where, params = key_range(list(ins.key.columns), None, list(last))
    return int(scalar(conn, f"SELECT COUNT(*) FROM {qt(ins.database, ins.ghost)} WHERE {where}", params))


def record_copy_last(conn, ins, last) -> None:
    write_changelog(conn, ins, COPY_LAST, json.dumps(enc(last)))


def applied_pos_statement(ins, pos: str) -> tuple[str, tuple]:
    """The apply batch's own record of its position, in its transaction."""
    return (f"INSERT INTO {qt(ins.database, ins.changelog)} (hint, value, ts) VALUES (%s, %s, NOW(6)) "
            f"ON DUPLICATE KEY UPDATE value=VALUES(value), ts=VALUES(ts)", (APPLIED_POS, pos))


class FollowPrimary:
    """The failover survival of ``MigrationTask``."""

    def _guard(self, conn) -> None:
        """A writing connection is opened only on the primary: after a
        switchover the old primary is read-only (an account with READ ONLY
        ADMIN would still write there, into a replica)."""
        if self._guarding and int(scalar(conn, "SELECT @@global.read_only") or 0):
            close_quietly(conn)
            raise PrimaryLost(f"{self.ep.label} is read-only now")

    def _check_primary(self) -> None:
        """Raise ``PrimaryLost`` once the watch or the apply found the primary gone."""
        why = self._primary_lost or (self.applier.lost if self.applier is not None else "")
        if why:
            raise PrimaryLost(why)

    def _probe_primary(self, held: list) -> None:
        """From the watch loop, once a second, on its connection ``held[0]``
        (reopened after an error; the loop closes it): the primary still is
        one (two failed probes in a row: gone).  Idle phases (postponed, the
        apply waiting) notice a failover too."""
        if not self._guarding or self._primary_lost:
            return
        try:
            if not held:
                held.append(connect(self.ep, connect_timeout=2, read_timeout=5, write_timeout=5))
            why = primary_problem(held[0], replicating=False)
        except Exception as e:  # noqa: BLE001
            if held:
                close_quietly(held.pop())
            why = f"unreachable ({str(describe_error(e)).removeprefix(f'{self.ep.label}: ')})"
        if not why:
            self._probe_failures = 0
            return
        self._probe_failures += 1
        if why.startswith(("unreachable", "does not answer")) and self._probe_failures < 2:
            return
        self._primary_lost = f"{self.ep.label} {why}"

    def _lost_primary(self, e: BaseException) -> str:
        """After ``e`` ended a step: why the primary is lost ('' when it is
        not: ``e`` is a failure of its own)."""
        if not self._guarding:
            return ""
        if isinstance(e, PrimaryLost):
            return str(e)
        why = probe(self.ep, replicating=False)
        if why:
            return f"{self.ep.label} {why}"
        code = e.args[0] if isinstance(e, pymysql.MySQLError) and e.args else None
        if code in LOST_CODES or (isinstance(e, UserError) and getattr(e, "code", None) in LOST_CODES):
            return f"lost the connection to {self.ep.label} ({describe_error(e)})"
        return ""

    def _follow_primary(self, why: str):
        """Pause, find the new primary, and return (connection, table lock,
        resume state) there; raises ``UserError`` when it cannot be told."""
        assert self.ins is not None and self.copier is not None
        self.primary_moves += 1
        old = self.ep
        self.log(f"primary lost: {why}; migration paused, looking for the new primary")
        self.set_phase("finding-primary")
        self._stop_workers()
        if self.applier is not None:
            self.applier.join(10)
        self._final_keys = None         # (the new run checks every chunk again: a full pass)
        mem_pos = self.applier.applied_pos if self.applier is not None else ""
        candidates = self.cluster or (old,)
        deadline = time.monotonic() + self.opts.failover_wait_seconds
        while True:
            self._check_panic()
            found, not_primary = find_primary(candidates)
            if found is not None:
                break
            if not self.cluster and not not_primary.get(old.label, "").startswith(("unreachable",
                                                                                    "does not")):
                raise UserError(self._cannot_tell(why))
            if time.monotonic() > deadline:
                raise UserError(self._cannot_tell(why) if not self.cluster else
                                f"primary lost ({why}) and no new primary among the cluster's hosts "
                                f"within {self.opts.failover_wait_seconds}s ("
                                + "; ".join(f"{k}: {v}" for k, v in not_primary.items())
                                + "); ghost and checkpoint kept: once a primary is up, rerun with "
                                  "--resume --execute")
            self.set_waiting("a new primary: " + "; ".join(f"{k} {v}" for k, v in not_primary.items()))
            self.sleep(0.5)
        self.set_waiting("")
        self.ep = found
        self._primary_lost = ""
        self._probe_failures = 0
        conn = self._connect(read_timeout=3600, write_timeout=3600)
        lock = None
        try:
            applied, last, have_last = None, None, False
            db, ins = self.ins.database, self.ins
            if (not self._swapped and self.cutover_attempts and not table_exists(conn, db, ins.ghost)
                    and table_exists(conn, db, ins.old)):
                # the RENAME (atomic) was made, its acknowledgement lost with the primary
                self._swapped = True
                self.log(f"the cut-over's RENAME was made before the primary was lost ({db}.{ins.ghost} "
                         f"is gone, {db}.{ins.old} is there): only the cleanup is left")
            if not self._swapped:       # (after the swap only the cleanup is left)
                check_tables(conn, self.ins, drop_ghost=False, drop_old=False, resume=True)
                applied, last, have_last = recorded(conn, self.ins)
            lock = self._take_table_lock()
            replicas = tuple((h, p) for h, p, _ in self.ins.dialect.replica_hosts(conn))
        except BaseException:
            close_quietly(*(c for c in (lock, conn) if c is not None))
            raise
        self.ins = dataclasses.replace(self.ins, replicas=replicas)
        if self.cutover_at and self.ep.address != old.address:
            # --revert's record: the old primary's binlog file:pos mean nothing
            # here; the GTID does (log_slave_updates kept it)
            self.cutover_at = dict(self.cutover_at, file=None, pos=None)
        c = self.copier
        state = {"applied_pos": applied or mem_pos, "min": c.min, "max": c.max,
                 "last": last if have_last else None, "rows": c.rows_copied, "done": False}
        where = (f"primary {old.label} is back" if self.ep.address == old.address
                 else f"new primary {self.ep.label} (was {old.label})")
        self.log(f"{where}: the binlog apply continues from GTID "
                 f"{state['applied_pos'] or '(empty)'}, the copy after key {state['last']} (what "
                 f"{self.ep.label} holds)")
        return conn, lock, state

    def _cannot_tell(self, why: str) -> str:
        o = self.opts
        return (f"primary lost ({why}) and this migration cannot tell the new primary (no cluster "
                f"configuration): ghost and checkpoint are kept; rerun on the new primary with "
                f"--resume --execute --host H --port P (the copy and the apply continue from what "
                f"its changelog {o.database}.{self.ins.changelog if self.ins else ''} records), or "
                f"give --config F --cluster C to follow a failover")
