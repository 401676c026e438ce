"""The table's triggers moved to the new table (gh-ost's ``--include-triggers``,
``--trigger-suffix``, ``--remove-trigger-suffix-if-exists``).

Trigger names are unique per schema and the old table keeps its triggers
through the RENAME (as ``<t>_del``'s), so each is created on the ghost under
a new name: the name plus the suffix, or, with
``--remove-trigger-suffix-if-exists``, the name without the suffix where it
ends in it (migrations then alternate between the two names).  They are
created by the cut-over under its lock, once the binlog apply is drained and
right before the RENAME: earlier, the apply's writes to the ghost would fire
them a second time (their effects on other tables are in the binlog
already).  An attempt called off drops them again.  Created with the
trigger's own ``sql_mode``, in its action order; no ``DEFINER`` clause (as
gh-ost): they run as the migration's user."""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.engine.migration.sqlutil import qi, qt
from console.errors import UserError
from console.mysql.connection import query

SUFFIX = re.compile(r"^[A-Za-z0-9_$]+$")


@dataclass(frozen=True)
class Trigger:
    name: str
    new_name: str
    timing: str        # BEFORE | AFTER
    event: str         # INSERT | UPDATE | DELETE
    statement: str     # the body
    sql_mode: str

    def create_sql(self, database: str, table: str) -> str:
        return (f"CREATE TRIGGER {qi(self.new_name)} {self.timing} {self.event} ON "
                f"{qt(database, table)} FOR EACH ROW {self.statement}")


def new_trigger_name(name: str, suffix: str, remove_if_exists: bool) -> str:
    if remove_if_exists and name.endswith(suffix) and len(name) > len(suffix):
        return name[: -len(suffix)]
    return name + suffix


def check_trigger_options(include: bool, suffix: str, remove_if_exists: bool) -> None:
    if suffix and not include:
        raise UserError("--trigger-suffix needs --include-triggers")
    if remove_if_exists and not suffix:
        raise UserError("--remove-trigger-suffix-if-exists needs --include-triggers and --trigger-suffix")
    if suffix and not SUFFIX.match(suffix):
        raise UserError(f"--trigger-suffix {suffix!r}: use letters, digits, _ or $ only")


def read_triggers(conn, db: str, table: str, ghost: str, suffix: str,
                  remove_if_exists: bool) -> tuple[Trigger, ...]:
    """The table's triggers with their new names; refused (before anything
    is made) when there is no suffix, or a new name is too long, taken by
    another trigger of the schema, or given twice."""
    rows = query(conn, "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT, "
                       "SQL_MODE FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA=%s AND "
                       "EVENT_OBJECT_TABLE=%s ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
                 (db, table))
    if not rows:
        return ()
    names = [r["TRIGGER_NAME"] for r in rows]
    if not suffix:
        raise UserError(f"--include-triggers: {db}.{table} has trigger(s) {', '.join(names)}; trigger "
                        f"names are unique per schema and the old table keeps its own, so give the new "
                        f"ones a --trigger-suffix (e.g. --trigger-suffix _v2)")
    out = [Trigger(r["TRIGGER_NAME"], new_trigger_name(r["TRIGGER_NAME"], suffix, remove_if_exists),
                   str(r["ACTION_TIMING"]), str(r["EVENT_MANIPULATION"]), str(r["ACTION_STATEMENT"]),
                   str(r["SQL_MODE"] or "")) for r in rows]
    # (those on a ghost left by an interrupted run are replaced at the cut-over)
    existing = {r["TRIGGER_NAME"] for r in query(conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                                                       "WHERE TRIGGER_SCHEMA=%s AND EVENT_OBJECT_TABLE<>%s",
                                                 (db, ghost))}
    seen: set[str] = set()
    for t in out:
        if len(t.new_name) > 64:
            raise UserError(f"--trigger-suffix: the new name of trigger {t.name}, {t.new_name!r}, is longer "
                            f"than 64 characters; use a shorter suffix")
        if t.new_name in existing or t.new_name in seen:
            raise UserError(f"--trigger-suffix: trigger {t.name} would be created as {t.new_name}, which "
                            f"exists in {db}; drop it or choose another suffix")
        seen.add(t.new_name)
    return tuple(out)


def create_on_ghost(conn, database: str, ghost: str, triggers: tuple[Trigger, ...]) -> list[str]:
    """Create the triggers on the ghost (the cut-over, under its lock);
    returns the names created (for ``drop_from_ghost`` if the attempt is
    called off), raising with those already made dropped."""
    made: list[str] = []
    drop_from_ghost(conn, database, ghost, [t.new_name for t in triggers])   # an earlier attempt's
    with conn.cursor() as cur:
        cur.execute(f"USE {qi(database)}")     # the bodies name tables as they were written
        cur.execute("SELECT @@session.sql_mode")
        mode = cur.fetchone()[0]
        try:
            for t in triggers:
                cur.execute("SET SESSION sql_mode = %s", (t.sql_mode,))
                cur.execute(t.create_sql(database, ghost))
                made.append(t.new_name)
        except Exception:
            drop_from_ghost(conn, database, ghost, made)
            raise
        finally:
            cur.execute("SET SESSION sql_mode = %s", (mode,))
    return made


def drop_from_ghost(conn, database: str, ghost: str, names: list[str]) -> None:
    """Drop those of ``names`` that are triggers of the ghost (never of
    another table: after a RENAME that went through unseen they are the
    live table's)."""
    for n in names:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA=%s AND "
                            "TRIGGER_NAME=%s AND EVENT_OBJECT_TABLE=%s", (database, n, ghost))
                if cur.fetchone():
                    cur.execute(f"DROP TRIGGER IF EXISTS {qt(database, n)}")
        except Exception:  # noqa: BLE001 - best effort; the attempt is failing anyway
            pass
