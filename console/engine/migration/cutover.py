"""Atomic cut-over with gh-ost's sentry-table algorithm (MariaDB refuses
RENAME inside LOCK TABLES):

1. C1 creates the sentry table ``_<t>_del`` and takes
   ``LOCK TABLES t WRITE, _<t>_del WRITE``: writers of ``t`` queue.
2. A marker is written to the changelog; the binlog apply is waited for up
   to it, so every change made to ``t`` is in the ghost.
3. C2 issues ``RENAME TABLE t TO _<t>_del, _<t>_gho TO t``: it blocks.
   We verify in the processlist that it waits on the metadata lock.
4. C1 drops the sentry; the RENAME, which takes its table locks one by one
   in byte order of the names (``_t_del`` < ``_t_gho`` < ``t`` for most
   names), now gets the sentry's and the ghost's and queues on ``t``.  We
   wait until it holds the lock of the name just before ``t`` (a probe with
   ``lock_wait_timeout=0`` times out), so that its exclusive request on
   ``t`` is pending before C1 unlocks: a pending exclusive lock goes before
   the queued writes, which then land in the new table.  Unlocking earlier
   let the queued writes run on the old table after the drain: lost.

Any failure before step 4 kills C2's RENAME and then drops the sentry and
unlocks: the original table stays where it was.  If C1 dies, its locks go,
the sentry stays, and the RENAME fails because ``_<t>_del`` exists: again
the original is intact."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pymysql

from console.engine.migration.inspect import Inspection
from console.engine.migration.sqlutil import qt, rename_gate_table
from console.engine.migration.tables import table_exists, write_changelog
from console.errors import UserError
from console.mysql.connection import connect, query_one


class CutOverFailed(Exception):
    pass


def cut_over(ep, ins: Inspection, applier, lock_timeout: int,
             log: Callable[[str], None] = lambda m: None,
             abort: Callable[[], None] = lambda: None) -> None:
    """``abort`` raises if the operator panicked or aborted meanwhile: it is
    asked under the lock, before the RENAME is issued and again just before
    the sentry is dropped (after that the swap is under way); raising there
    undoes the attempt like any failure, the original in place."""
    db = ins.database
    orig, ghost, sentry = qt(db, ins.table), qt(db, ins.ghost), qt(db, ins.old)
    c1 = connect(ep, read_timeout=lock_timeout * 4 + 30)
    c2 = connect(ep, read_timeout=lock_timeout * 4 + 30)
    cm = connect(ep)
    probe = connect(ep)
    created = locked = False
    rename_result: dict[str, object] = {}
    rename_thread: threading.Thread | None = None
    c2_id = c2.thread_id()
    try:
        if table_exists(cm, db, ins.old):
            raise UserError(f"{db}.{ins.old} exists: cannot place the sentry table; drop it "
                            f"or pass --initially-drop-old-table")
        with c1.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = %s", (lock_timeout,))
            cur.execute(f"CREATE TABLE {sentry} (id INT AUTO_INCREMENT PRIMARY KEY) "
                        f"ENGINE=InnoDB COMMENT='dbops-console cut-over sentry'")
            created = True
            cur.execute(f"LOCK TABLES {orig} WRITE, {sentry} WRITE")
            locked = True
        log("original and sentry locked")
        token = applier.expect_marker()
        write_changelog(cm, ins, "marker", token)
        if not applier.wait_marker(token, lock_timeout):
            raise CutOverFailed(f"binlog apply did not drain within {lock_timeout}s under the lock")
        log("binlog drained up to the lock")
        abort()

        def rename():
            try:
                with c2.cursor() as cur:
                    cur.execute("SET SESSION lock_wait_timeout = %s", (lock_timeout * 2,))
                    cur.execute(f"RENAME TABLE {orig} TO {sentry}, {ghost} TO {orig}")
                rename_result["ok"] = True
            except Exception as e:  # noqa: BLE001
                rename_result["error"] = e

        rename_thread = threading.Thread(target=rename, name="cut-over-rename", daemon=True)
        rename_thread.start()
        deadline = time.monotonic() + lock_timeout
        waiting = False
        while time.monotonic() < deadline and rename_thread.is_alive():
            row = query_one(cm, "SELECT STATE, INFO FROM information_schema.PROCESSLIST WHERE ID=%s",
                            (c2_id,))
            if row and "metadata lock" in str(row["STATE"] or "").lower() and \
                    str(row["INFO"] or "").upper().startswith("RENAME"):
                waiting = True
                break
            time.sleep(0.01)
        if not waiting:
            raise CutOverFailed("the RENAME was not seen waiting on the metadata lock" +
                                (f": {rename_result.get('error')}" if "error" in rename_result else ""))
        log("RENAME is queued behind the lock")
        abort()                 # the last moment the swap can still be called off
        with c1.cursor() as cur:
            cur.execute(f"DROP TABLE {sentry}")
            created = False
        gate = rename_gate_table(ins.table, ins.old, ins.ghost)
        if gate is not None:
            _wait_rename_past(probe, db, gate, rename_thread, deadline=time.monotonic() + lock_timeout)
            log(f"RENAME holds {gate}: queued on the original")
        with c1.cursor() as cur:
            cur.execute("UNLOCK TABLES")
            locked = False
        rename_thread.join(lock_timeout * 2 + 5)
        if rename_thread.is_alive():
            raise CutOverFailed("the RENAME did not finish after the unlock")
        if "error" in rename_result:
            raise CutOverFailed(f"RENAME failed: {rename_result['error']}")
        log("tables swapped")
    except Exception:
        _undo(cm, c1, c2_id, rename_thread, sentry, created, locked)
        raise
    finally:
        for c in (c1, c2, cm, probe):
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass


def _holds_exclusive(probe, db: str, name: str) -> bool:
    """Does someone hold an exclusive metadata lock on ``db.name``?  SHOW
    CREATE TABLE takes a high-priority shared lock, blocked only by a
    granted exclusive one; lock_wait_timeout is 0 on the probe."""
    try:
        with probe.cursor() as cur:
            cur.execute(f"SHOW CREATE TABLE {qt(db, name)}")
    except pymysql.MySQLError as e:
        code = e.args[0] if e.args else None
        if code == 1205:        # lock wait timeout: held exclusively
            return True
        if code == 1146:        # no such table (the dropped sentry), not locked
            return False
        raise
    return False


def _wait_rename_past(probe, db: str, gate: str, rename_thread, deadline: float) -> None:
    with probe.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = 0")
    while time.monotonic() < deadline:
        if not rename_thread.is_alive():
            return          # done or failed: the caller looks at the result
        if _holds_exclusive(probe, db, gate):
            return
        time.sleep(0.002)
    raise CutOverFailed(f"the RENAME did not take the lock of {gate} after the sentry was dropped")


def _undo(cm, c1, c2_id, rename_thread, sentry, created, locked) -> None:
    """Leave the original table in place: stop the RENAME first, then unlock."""
    if rename_thread is not None and rename_thread.is_alive():
        try:
            with cm.cursor() as cur:
                cur.execute(f"KILL QUERY {int(c2_id)}")
        except Exception:  # noqa: BLE001
            pass
        rename_thread.join(10)
    try:
        with c1.cursor() as cur:
            if created:
                cur.execute(f"DROP TABLE IF EXISTS {sentry}")
            if locked:
                cur.execute("UNLOCK TABLES")
    except Exception:  # noqa: BLE001 - c1 gone: its locks went with it
        pass
    if created:
        try:
            with cm.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {sentry}")
        except Exception:  # noqa: BLE001
            pass
