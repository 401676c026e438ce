"""Atomic cut-over with gh-ost's sentry-table algorithm (MariaDB refuses
RENAME inside LOCK TABLES), made safe by the order of the names:

1. C1 creates the sentry table ``<t>_del`` and takes
   ``LOCK TABLES t WRITE, <t>_del WRITE``: writers of ``t`` queue for its
   metadata lock.
2. A marker is written to the changelog; the binlog apply is waited for up
   to it, so every change made to ``t`` is in the ghost.  The checksum's
   last changed keys are compared now, exactly: nothing can write either
   table (``check``; a difference calls the attempt off).
3. The ghost's AUTO_INCREMENT counter is raised to the original's (ids that
   were handed out and deleted or rolled back are never reused).
4. C2 issues ``RENAME TABLE t TO <t>_del, <t>_gho TO t``.  A RENAME sorts
   its metadata-lock requests by name (bytewise) and takes them one at a
   time; ``t`` is a prefix of the two other names, so ``t`` comes first:
   the RENAME's exclusive request on ``t`` is queued behind C1's lock
   before it asks for anything else.  We see it in the processlist as
   "Waiting for table metadata lock", which can then only be that request.
5. C1 drops the sentry and unlocks.  A pending exclusive request goes
   before the queued writers' shared ones: the RENAME takes ``t``, then the
   free sentry name and the ghost (waiting for the ghost, if a transaction
   holds it, with ``t`` held: writers keep waiting), and swaps.  The queued
   writes land in the new ``t``.

Why the names matter: with gh-ost's ``_t_del`` / ``_t_gho`` (both sort
before ``t`` for a name that starts with a lower-case letter) the RENAME
first waits on the sentry, then takes the ghost, and only then queues on
``t``.  Between taking the ghost and queueing on ``t`` nothing outside the
server can see where it is: an unlock in that gap (the RENAME thread
descheduled on a busy machine) let the queued writes run on the old table
after the drain, and they were lost (1 of ~5,000 cut-overs under load).

Any failure before step 5 kills C2's RENAME and then drops the sentry and
unlocks: the original table stays where it was.  If C1 dies, its locks go,
the sentry stays, and the RENAME fails because ``<t>_del`` exists: again
the original is intact.  A RENAME that fails after the unlock (its lock
wait on a held ghost timed out) leaves the original in place too; the
writes made meanwhile reach the ghost through the binlog apply, which runs
until the swap is done."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from console.engine.migration.inspect import Inspection
from console.engine.migration.sqlutil import locked_before, qt
from console.engine.migration.tables import carry_auto_increment, table_exists, write_changelog
from console.engine.migration.triggers import create_on_ghost, drop_from_ghost
from console.errors import UserError
from console.mysql.connection import close_quietly, connect, query_one


class CutOverFailed(Exception):
    pass


class KeysDiffer(CutOverFailed):
    """The last changed keys compared under the lock differ: called off."""

    def __init__(self, keys: list):
        super().__init__(f"{len(keys)} changed key(s) differ under the lock (first: {keys[0]!r}); "
                         f"copied again before the next attempt")
        self.keys = keys


def cut_over(ep, ins: Inspection, applier, lock_timeout: int,
             log: Callable[[str], None] = lambda m: None,
             abort: Callable[[], None] = lambda: None,
             check: Callable[[object, object], None] | None = None,
             session: str | None = None,
             position: Callable[[object], dict] | None = None,
             guard: Callable[[object], None] | None = None) -> dict:
    """``abort`` raises if the operator panicked or aborted meanwhile: it is
    asked under the lock, before the RENAME is issued and again just before
    the sentry is dropped (after that the swap is under way); raising there
    undoes the attempt like any failure, the original in place.  ``check``
    runs under the lock once the apply is drained, given the connection that
    holds the lock (the only one that can read the original then) and one
    for the ghost: the checksum's last changed keys; raising calls it off."""
    db = ins.database
    orig, ghost, sentry = qt(db, ins.table), qt(db, ins.ghost), qt(db, ins.old)
    if not (locked_before(ins.table, ins.old) and locked_before(ins.table, ins.ghost)):
        raise CutOverFailed(f"the RENAME would not lock {ins.table} first (before {ins.old} and "
                            f"{ins.ghost}): the swap could lose writes; refused")
    c1 = connect(ep, read_timeout=lock_timeout * 4 + 30, init_command=session)
    c2 = connect(ep, read_timeout=lock_timeout * 4 + 30, init_command=session)
    cm = connect(ep, init_command=session)
    created = locked = False
    made_triggers: list[str] = []
    rename_result: dict[str, object] = {}
    rename_thread: threading.Thread | None = None
    c2_id = c2.thread_id()
    at: dict = {}
    try:
        if guard is not None:       # still the primary (``follow.py``)
            guard(cm)
        for c in (c1, c2, cm):      # their DDL (sentry, AUTO_INCREMENT, RENAME) is ours
            applier.own(c)
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
        if check is not None:
            check(c1, cm)
        if (n := carry_auto_increment(cm, ins, lock_timeout)) is not None:
            log(f"ghost's AUTO_INCREMENT raised to the original's, {n}")
        if position is not None:
            at = position(cm)
        if ins.triggers:        # now: the apply's writes to the ghost are done
            made_triggers = create_on_ghost(cm, db, ins.ghost, ins.triggers)
            log(f"trigger(s) created on the ghost: {', '.join(made_triggers)}")
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
            if row and str(row["STATE"] or "") == "Waiting for table metadata lock" and \
                    str(row["INFO"] or "").upper().startswith("RENAME"):
                waiting = True
                break
            time.sleep(0.01)
        if not waiting:
            raise CutOverFailed("the RENAME was not seen waiting on the metadata lock" +
                                (f": {rename_result.get('error')}" if "error" in rename_result else ""))
        log("RENAME is queued on the original behind the lock")
        abort()                 # the last moment the swap can still be called off
        with c1.cursor() as cur:
            cur.execute(f"DROP TABLE {sentry}")
            created = False
        with c1.cursor() as cur:
            cur.execute("UNLOCK TABLES")
            locked = False
        rename_thread.join(lock_timeout * 2 + 5)
        if rename_thread.is_alive():        # stop it; it may still have swapped meanwhile
            _kill_query(cm, c2_id)
            rename_thread.join(10)
        if "ok" not in rename_result:
            raise CutOverFailed(f"RENAME failed: {rename_result.get('error', 'it did not finish')}")
        log("tables swapped")
        return at
    except Exception:
        _undo(cm, c1, c2_id, rename_thread, sentry, created, locked)
        drop_from_ghost(cm, db, ins.ghost, made_triggers)
        raise
    finally:
        close_quietly(c1, c2, cm)


def _kill_query(cm, thread_id: int) -> None:
    try:
        with cm.cursor() as cur:
            cur.execute(f"KILL QUERY {int(thread_id)}")
    except Exception:  # noqa: BLE001 - the query may be gone already
        pass


def _undo(cm, c1, c2_id, rename_thread, sentry, created, locked) -> None:
    """Leave the original table in place: stop the RENAME first, then unlock."""
    if rename_thread is not None and rename_thread.is_alive():
        _kill_query(cm, c2_id)
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
