"""``--revert`` (gh-ost 1.1.8's): undo a completed migration whose old table
was kept, without losing what was written since.

A completed migration records, in ``STATE_DIR/tasks/<id>/completed.json``,
the binlog position read under the cut-over's lock once the apply was
drained (every row event of ``<t>`` after it is a write to the new table:
nothing could write ``<t>`` until the RENAME), the column mapping, the
chunking key and its own sessions' connection ids (its sentry, RENAME and
cleanup DDL on the tables is in that binlog and is not DDL to abort on).

The revert is a migration with the roles turned: the "original" is the
current ``<t>`` (new schema), the "ghost" is the old table ``<t>_del``,
already holding every row as of the cut-over, so nothing is copied: the
binlog apply replays every change made to ``<t>`` since the cut-over onto
it (shared columns, mapped back; a column the migration added is not
kept, one it dropped gets its default), then the checksum compares the
whole of both tables (a full pass, mismatches copied again) and the same
sentry cut-over swaps them: ``<t>`` is the old table again, and the
migrated table is kept as ``<t>_gho`` (dropped with --ok-to-drop-table).
As gh-ost says: a revert is the reverse ALTER, so rows written since that
the old schema cannot hold (a value too long for the old column, NULL in
a column it had NOT NULL) stop it."""

from __future__ import annotations

import time
from pathlib import Path

from console.engine.migration.alter import AlterPlan
from console.engine.migration.inspect import (
    Inspection,
    Refused,
    UniqueKey,
    check_replication_grant,
    check_server,
    read_columns,
    table_names,
)
from console.engine.migration.tables import table_exists
from console.engine.state import read_json, write_json_atomic
from console.mysql.connection import query, query_one
from console.mysql.flavor import detect

RECORD = "completed.json"
VERSION = 1


def record_completed(task_dir: Path, ins: Inspection, at: dict, own_sessions: set[int], alter: str) -> Path:
    path = Path(task_dir) / RECORD
    write_json_atomic(path, {
        "version": VERSION, "database": ins.database, "table": ins.table, "alter": alter,
        "old_table": ins.old, "shared": [list(p) for p in ins.shared],
        "key": {"name": ins.key.name, "columns": list(ins.key.columns),
                "ghost_columns": list(ins.key.ghost_columns), "ghost_unique": ins.key.ghost_unique},
        "cutover": {"file": at.get("file"), "pos": at.get("pos"), "gtid": at.get("gtid")},
        "own_sessions": sorted(own_sessions), "completed_at": time.time(),
    })
    return path


def _key_index(conn, db: str, table: str, cols: list[str]) -> str | None:
    """The index of ``table`` whose leading columns are ``cols`` (PRIMARY,
    then unique ones first)."""
    idx: dict[str, list[tuple[int, str, bool]]] = {}
    for r in query(conn, "SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE FROM "
                         "information_schema.STATISTICS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
                   (db, table)):
        idx.setdefault(r["INDEX_NAME"], []).append((int(r["SEQ_IN_INDEX"]), r["COLUMN_NAME"],
                                                   not int(r["NON_UNIQUE"])))
    found = []
    for name, parts in idx.items():
        parts.sort()
        if [c.lower() for _, c, _ in parts[:len(cols)]] == [c.lower() for c in cols]:
            found.append((name != "PRIMARY", not parts[0][2], len(parts), name))
    return sorted(found)[0][3] if found else None


def inspect_revert(conn, database: str, table: str, old_table: str, task_dir: Path,
                   notes: list[str]) -> tuple[Inspection, dict]:
    """The revert's inspection: every refusal before anything is made."""
    rec = read_json(Path(task_dir) / RECORD)
    if rec is None or rec.get("database") != database or rec.get("table") != table:
        raise Refused(f"--revert: no completed migration of {database}.{table} is recorded in "
                      f"{Path(task_dir) / RECORD} (the record is written when a migration completes "
                      f"and keeps its old table; give the same --state-dir)")
    if rec.get("version") != VERSION:
        raise Refused(f"--revert: {Path(task_dir) / RECORD} has version {rec.get('version')}")
    old_table = old_table or rec["old_table"]
    dialect = detect(conn)
    check_server(conn, dialect)
    check_replication_grant(conn, dialect)
    _, changelog, _ = table_names(table)
    moved = f"{table}_gho"          # where the migrated table goes (the sentry's name)
    if not table_exists(conn, database, table):
        raise Refused(f"--revert: {database}.{table} does not exist")
    if not table_exists(conn, database, old_table):
        raise Refused(f"--revert: the old table {database}.{old_table} is gone (dropped?): nothing to revert to")
    for t in (changelog, moved):
        if table_exists(conn, database, t):
            raise Refused(f"--revert: {database}.{t} exists: drop it first (the revert needs its name)")
    cut = rec["cutover"]
    if cut.get("file"):
        logs = {r["Log_name"] for r in query(conn, "SHOW BINARY LOGS")}
        if cut["file"] not in logs:
            raise Refused(f"--revert: the binlog of the cut-over ({cut['file']}) has been purged: the "
                          f"changes made since cannot be read")
    trig = query(conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA=%s "
                       "AND EVENT_OBJECT_TABLE=%s", (database, table))
    if trig:
        raise Refused(f"--revert: {database}.{table} has trigger(s) {', '.join(r['TRIGGER_NAME'] for r in trig)}"
                      f"; drop them first (the old table keeps its own)")
    columns = read_columns(conn, database, table)
    old_columns = read_columns(conn, database, old_table)
    have = {c.name for c in columns}
    have_old = {c.name for c in old_columns}
    shared = tuple((g, o) for o, g in rec["shared"] if g in have and o in have_old)
    k = rec["key"]
    kcols = [c for c in k["ghost_columns"]]
    name = _key_index(conn, database, table, kcols)
    if name is None or not all(c in have for c in kcols):
        raise Refused(f"--revert: {database}.{table} has no index on the key ({', '.join(kcols)}) the "
                      f"migration recorded")
    key = UniqueKey(name, tuple(kcols), tuple(k["columns"]), ghost_unique=True)
    t = query_one(conn, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND "
                        "TABLE_NAME=%s", (database, table))
    replicas = tuple((h, p) for h, p, _ in dialect.replica_hosts(conn))
    notes.append(f"revert of {database}.{table} (migrated with: {rec.get('alter')}) to {old_table}: "
                 f"replaying the changes since the cut-over"
                 + (f" ({cut['file']}:{cut['pos']})" if cut.get("file") else f" (GTID {cut.get('gtid')})")
                 + f"; the migrated table is kept as {moved}")
    ins = Inspection(database, table, old_table, changelog, moved, AlterPlan((), (), ()), dialect,
                     columns, old_columns, shared, key, int((t or {}).get("TABLE_ROWS") or 0), replicas,
                     tuple(notes))
    return ins, rec


__all__ = ["record_completed", "inspect_revert", "RECORD"]
