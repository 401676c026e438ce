"""Inspection before anything changes: server settings, the table, its keys,
foreign keys and triggers, the new schema (built on a temporary copy, so a
dry run changes nothing), column renames, the shared unique key, a row
estimate and the replicas to watch.  Every refusal is one clear line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pymysql

from console.engine.migration.alter import AlterPlan, parse_alter
from console.engine.migration.session import ZERO_DATE_MODES
from console.engine.migration.sqlutil import cast_target, qi, qt
from console.engine.migration.triggers import Trigger, check_trigger_options, read_triggers
from console.errors import UserError
from console.kinds.migration import MigrationOptions
from console.mysql.connection import query, query_one, scalar
from console.mysql.flavor import Dialect, detect
from console.mysql.grants import REPLICATION_SLAVE, has_global_privilege


class Refused(UserError):
    """The migration cannot (or must not) run; the message says why and how."""


INT_TYPES = ("tinyint", "smallint", "mediumint", "int", "bigint")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    is_string: bool
    generated: bool
    charset: str | None = None    # of a string column (from its collation)
    auto_increment: bool = False


@dataclass(frozen=True)
class UniqueKey:
    name: str                 # name in the original table
    columns: tuple[str, ...]  # original column names
    ghost_columns: tuple[str, ...]
    # the ghost columns are a unique key of the ghost too; else they are the
    # leading columns of one (a new key containing the old one): they still
    # identify a row and range over an index there, but the copy and the
    # apply must delete by them before they insert (see ``dml``, ``copy``)
    ghost_unique: bool = True


@dataclass(frozen=True)
class Inspection:
    database: str
    table: str
    ghost: str
    changelog: str
    old: str
    plan: AlterPlan
    dialect: Dialect                               # as detected: flavor, version, statements
    columns: tuple[Column, ...]
    ghost_columns: tuple[Column, ...]
    shared: tuple[tuple[str, str], ...]            # (original name, ghost name)
    key: UniqueKey
    rows_estimate: int
    replicas: tuple[tuple[str, int], ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    # unique keys of the new schema that no old unique key implies: rows may
    # collide on them (see ``added_unique_keys``)
    added_unique: tuple[str, ...] = ()
    # --include-triggers: the table's triggers, created on the ghost at the cut-over
    triggers: tuple[Trigger, ...] = ()

    @property
    def flavor(self) -> str:
        """mariadb | mysql | mysql84"""
        return self.dialect.name

    @property
    def shared_original(self) -> tuple[str, ...]:
        return tuple(o for o, _ in self.shared)

    @property
    def shared_ghost(self) -> tuple[str, ...]:
        return tuple(g for _, g in self.shared)

    def column_pairs(self) -> list[tuple[str, str, Column | None, Column | None]]:
        """Each shared pair: (original name, ghost name, their columns)."""
        oc = {c.name: c for c in self.columns}
        gc = {c.name: c for c in self.ghost_columns}
        return [(o, g, oc.get(o), gc.get(g)) for o, g in self.shared]

    def convert_columns(self) -> tuple[set[str], set[str]]:
        """(original, ghost) string columns whose text the checksum must
        convert to utf8mb4 to compare: those of a shared pair whose character
        set differs (or that is a string on one side only).  A pair of the
        same character set compares as it is (the conversion cost a third of
        the checksum's time)."""
        conv_o: set[str] = set()
        conv_g: set[str] = set()
        for o, g, a, b in self.column_pairs():
            if a is None or b is None:
                continue
            if a.is_string and b.is_string and a.charset and a.charset == b.charset:
                continue
            if a.is_string:
                conv_o.add(o)
            if b.is_string:
                conv_g.add(g)
        return conv_o, conv_g

    def cast_columns(self) -> dict[str, str]:
        """Original column -> the CAST its value needs in the checksum to
        read as the ghost column's new type (see ``sqlutil.cast_target``)."""
        out = {}
        for o, _, a, b in self.column_pairs():
            if a is not None and b is not None and (t := cast_target(a.type, b.type)):
                out[o] = t
        return out

    def nullable_columns(self) -> tuple[set[str], set[str]]:
        """(original, ghost) columns of the shared pairs that may hold NULL
        on either side: only those need the checksum's NULL marker (a pair
        NOT NULL on both sides never has one to mark; the markers were a
        sixth of the checksum's time on a 4-column table)."""
        null_o: set[str] = set()
        null_g: set[str] = set()
        for o, g, a, b in self.column_pairs():
            if a is None or b is None or a.nullable or b.nullable:
                null_o.add(o)
                null_g.add(g)
        return null_o, null_g


def table_names(table: str) -> tuple[str, str, str]:
    """Ghost, changelog and old (sentry) table names: the table's name with a
    suffix, so that both names the cut-over's RENAME touches besides the
    original sort after it in byte order (a name is a prefix of them).  The
    RENAME takes its metadata locks in that order: its first request is on
    the original, queued behind the cut-over's LOCK TABLES (see cutover.py).
    gh-ost's ``_<t>_gho`` / ``_<t>_del`` sort *before* ``t`` for every name
    that starts with a lower-case letter, and that order lost writes."""
    return f"{table}_gho", f"{table}_ghc", f"{table}_del"


def check_table_name(table: str) -> str:
    """The empty table the inspection tries the ALTER on: as long as the
    others, so a name that fits them fits it."""
    return f"{table}_gck"


def read_columns(conn, db: str, table: str) -> tuple[Column, ...]:
    out = []
    for r in query(conn, f"SHOW FULL COLUMNS FROM {qt(db, table)}"):
        extra = str(r.get("Extra") or "").upper()
        out.append(Column(
            name=r["Field"], type=str(r["Type"]).lower(), nullable=r["Null"] == "YES",
            is_string=r.get("Collation") is not None,
            generated="GENERATED" in extra or "PERSISTENT" in extra or "VIRTUAL" in extra,
            charset=str(r["Collation"]).split("_", 1)[0] if r.get("Collation") else None,
            auto_increment="AUTO_INCREMENT" in extra))
    return tuple(out)


def read_unique_keys(conn, db: str, table: str) -> dict[str, list[tuple[str, bool]]]:
    """Unique keys: name -> [(column, usable)] in key order (usable: no prefix)."""
    keys: dict[str, list[tuple[int, str, bool]]] = {}
    for r in query(conn, f"SHOW INDEX FROM {qt(db, table)}"):
        if int(r["Non_unique"]) != 0:
            continue
        col = r.get("Column_name")  # None for a functional key part
        keys.setdefault(r["Key_name"], []).append(
            (int(r["Seq_in_index"]), col or "", col is not None and r.get("Sub_part") is None))
    return {k: [(c, ok) for _, c, ok in sorted(v)] for k, v in keys.items()}


def added_unique_keys(okeys: dict[str, list[tuple[str, bool]]], gkeys: dict[str, list[tuple[str, bool]]],
                      to_ghost: dict[str, str]) -> list[str]:
    """Unique keys of the new schema that no unique key of the old one
    implies.  A new key is implied when its whole (non-prefix) columns
    include all columns of an old unique key (unique on those, unique on
    more); otherwise rows the old schema allowed may collide on it: the
    copy's INSERT IGNORE drops one of them, the apply's REPLACE deletes the
    older one (even a row whose chunk was already checked)."""
    olds = []
    for kc in okeys.values():
        if kc and all(ok for _, ok in kc) and all(c.lower() in to_ghost for c, _ in kc):
            olds.append({to_ghost[c.lower()].lower() for c, _ in kc})
    out = []
    for name, kc in gkeys.items():
        whole = {c.lower() for c, ok in kc if ok}
        if not any(o <= whole for o in olds):
            out.append(name)
    return out


def check_server(conn, dialect: Dialect) -> list[str]:
    row = query_one(conn, "SELECT @@global.log_bin AS log_bin, @@global.binlog_format AS fmt, "
                          "@@global.binlog_row_image AS img")
    if not row or str(row["log_bin"]) not in ("1", "ON"):
        raise Refused("the binary log is off on this server: start it with log_bin (the migration "
                      "reads changes from the binlog)")
    if str(row["fmt"]).upper() != "ROW":
        raise Refused(f"binlog_format is {row['fmt']}: set binlog_format=ROW "
                      f"(SET GLOBAL binlog_format=ROW and reconnect writers)")
    if str(row["img"]).upper() != "FULL":
        raise Refused(f"binlog_row_image is {row['img']}: set binlog_row_image=FULL")
    if dialect.name != "mariadb":
        gm = query_one(conn, "SHOW GLOBAL VARIABLES LIKE 'gtid_mode'")
        if not gm or str(gm["Value"]).upper() != "ON":
            raise Refused("gtid_mode is not ON: the binlog apply keeps its position by GTID; "
                          "enable GTIDs (gtid_mode=ON, enforce_gtid_consistency=ON)")
    meta = query_one(conn, "SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'")
    if meta and str(meta["Value"]).upper() != "FULL":
        raise Refused(f"binlog_row_metadata is {meta['Value']}: set binlog_row_metadata=FULL "
                      f"(row events must carry column names)")
    return []


def check_replication_grant(conn, dialect: Dialect) -> None:
    """The binlog apply reads the binlog as a replica does: refuse now,
    before anything is created, if the account may not (MariaDB: SHOW GRANTS
    lists the user's and its enabled role's grants; on MySQL a role's are
    not listed, so it is not checked there and the apply's error says it)."""
    if dialect.name != "mariadb" or has_global_privilege(conn, REPLICATION_SLAVE):
        return
    user = scalar(conn, "SELECT CURRENT_USER()")
    raise Refused(f"{user} lacks the REPLICATION SLAVE privilege: the binlog apply reads the binlog "
                  f"as a replica does (GRANT REPLICATION SLAVE ON *.* TO it)")


def choose_key(cands: list[UniqueKey], cols: dict[str, Column]) -> UniqueKey:
    def rank(k: UniqueKey):
        ints = all(cols[c].type.split("(")[0].split()[0] in INT_TYPES for c in k.columns)
        return (not k.ghost_unique, k.name != "PRIMARY", len(k.columns), not ints, k.name)

    return sorted(cands, key=rank)[0]


def inspect(conn, opts: MigrationOptions) -> Inspection:
    """Read everything and refuse what cannot be migrated safely."""
    db, table = opts.database, opts.table
    plan = parse_alter(opts.alter)
    dialect = detect(conn)
    notes = [f"server: {dialect.name} {dialect.version.text}"]
    check_server(conn, dialect)
    check_replication_grant(conn, dialect)
    ghost, changelog, old = table_names(table)
    longest = check_table_name(table)
    if len(longest) > 64:
        raise Refused(f"table name {table!r} is too long: the migration's table name {longest!r} "
                      f"would exceed 64 characters")
    t = query_one(conn, "SELECT ENGINE, TABLE_ROWS, TABLE_TYPE FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s", (db, table))
    if not t:
        raise Refused(f"table {db}.{table} does not exist")
    if t["TABLE_TYPE"] != "BASE TABLE":
        raise Refused(f"{db}.{table} is a {t['TABLE_TYPE']}, not a base table")
    if str(t["ENGINE"]).lower() != "innodb":
        raise Refused(f"{db}.{table} uses engine {t['ENGINE']}: only InnoDB tables can be "
                      f"migrated online")
    trig = query(conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                       "WHERE EVENT_OBJECT_SCHEMA=%s AND EVENT_OBJECT_TABLE=%s", (db, table))
    check_trigger_options(opts.include_triggers, opts.trigger_suffix, opts.remove_trigger_suffix_if_exists)
    triggers: tuple[Trigger, ...] = ()
    if opts.include_triggers:
        triggers = read_triggers(conn, db, table, ghost, opts.trigger_suffix,
                                 opts.remove_trigger_suffix_if_exists)
    elif trig and not opts.allow_triggers:
        raise Refused(f"{db}.{table} has trigger(s) {', '.join(r['TRIGGER_NAME'] for r in trig)}: "
                      f"they would not follow the table; pass --include-triggers --trigger-suffix S "
                      f"to move them to the new table, or --allow-triggers to leave them on the old one")
    # foreign keys of other tables that reference this one (its own, pointing
    # at itself, move with it): the RENAME of the cut-over takes them along to
    # the old table, and no method here keeps them right, so always refused
    referencing = query(conn, "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME FROM "
                              "information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_SCHEMA=%s "
                              "AND REFERENCED_TABLE_NAME=%s AND NOT (TABLE_SCHEMA=%s AND TABLE_NAME=%s) "
                              "ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME", (db, table, db, table))
    if referencing:
        names = ", ".join(f"{r['TABLE_SCHEMA']}.{r['TABLE_NAME']} ({r['CONSTRAINT_NAME']})"
                          for r in referencing)
        raise Refused(f"{db}.{table} is the parent of foreign key(s) from {names}: after the cut-over "
                      f"they would point at the old table {old}; drop them before migrating "
                      f"(--allow-foreign-keys covers only the table's own foreign keys)")
    children = query(conn, "SELECT DISTINCT CONSTRAINT_NAME FROM information_schema.KEY_COLUMN_USAGE "
                           "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND REFERENCED_TABLE_NAME "
                           "IS NOT NULL", (db, table))
    if children and not opts.allow_foreign_keys:
        raise Refused(f"{db}.{table} has foreign key(s) {', '.join(r['CONSTRAINT_NAME'] for r in children)}: "
                      f"the ghost table would lose them; pass --allow-foreign-keys to accept that")
    if plan.renames and not opts.approve_renamed_columns:
        desc = ", ".join(f"{a} -> {b}" for a, b in plan.renames)
        raise Refused(f"--alter renames column(s) {desc}: check the mapping and approve it with "
                      f"--approve-renamed-columns")

    columns = read_columns(conn, db, table)
    check_zero_dates(conn, db, table)
    with new_schema(conn, db, table, plan, notes) as ghost_cols:
        gkeys = read_unique_keys(conn, db, check_table_name(table))
    rename = {a.lower(): b for a, b in plan.renames}
    gmap = {c.name.lower(): c for c in ghost_cols if not c.generated}
    # a dropped column is never shared, even where the ghost has a column
    # of its name (added again, or another one renamed to it): a new column
    dropped_names = {d.lower() for d in plan.drops}
    shared = []
    for c in columns:
        if c.generated or c.name.lower() in dropped_names:
            continue
        target = rename.get(c.name.lower(), c.name)
        g = gmap.get(target.lower())
        if g is not None:
            shared.append((c.name, g.name))
    if not shared:
        raise Refused("the old and new schema share no column")
    to_ghost = {o.lower(): g for o, g in shared}
    colmap = {c.name: c for c in columns}
    okeys = read_unique_keys(conn, db, table)
    gkey_cols = [tuple(c.lower() for c, _ in v) for v in gkeys.values() if all(ok for _, ok in v)]
    cands = []
    unordered = []          # (old key, new key) whose columns contain the old one's, not first
    for name, kc in okeys.items():
        if not kc or not all(ok for _, ok in kc):
            continue
        cols = [c for c, _ in kc]
        if any(colmap[c].nullable for c in cols) or any(c.lower() not in to_ghost for c in cols):
            continue
        mapped = tuple(to_ghost[c.lower()] for c in cols)
        low = tuple(m.lower() for m in mapped)
        # unique in the old table; in the ghost a unique key of these
        # columns, or one that starts with them (unique on more columns:
        # these still identify a row, and range over that key's index)
        if low in gkey_cols:
            cands.append(UniqueKey(name, tuple(cols), mapped))
        elif any(g[:len(low)] == low for g in gkey_cols):
            cands.append(UniqueKey(name, tuple(cols), mapped, ghost_unique=False))
        else:
            unordered += [(name, g) for g in gkey_cols if set(low) <= set(g)]
    added_unique = added_unique_keys(okeys, gkeys, {o.lower(): g for o, g in shared})
    if not cands and unordered:
        name, g = unordered[0]
        raise Refused(f"the new unique key ({', '.join(g)}) of {db}.{table} contains the old key {name} "
                      f"but does not start with its columns: the copy could not range over it; put "
                      f"them first in the new key, or keep a unique key on them")
    if not cands:
        raise Refused(f"no NOT NULL unique key is shared by the old and new schema of {db}.{table}: "
                      f"add a primary key first (the copy and the binlog apply need one)")
    key = choose_key(cands, colmap)
    notes.append(f"chunking key: {key.name} ({', '.join(key.columns)})"
                 + ("" if key.ghost_unique else ": in the new table the leading columns of a unique key "
                    "(the copy and the apply delete by it before they insert)"))
    dropped = [c.name for c in columns if c.name not in {o for o, _ in shared}]
    added = [c.name for c in ghost_cols if c.name not in {g for _, g in shared}]
    if dropped:
        notes.append(f"columns dropped: {', '.join(dropped)}")
    if plan.readded:
        notes.append(f"columns dropped and added again (new columns: not copied, not compared): "
                     f"{', '.join(sorted(plan.readded))}")
    if added:
        notes.append(f"columns added: {', '.join(added)}")
    if plan.renames:
        notes.append("columns renamed (approved): " + ", ".join(f"{a} -> {b}" for a, b in plan.renames))
    if added_unique:
        notes.append(f"new unique key(s) {', '.join(added_unique)}: rows that collide on them would be "
                     f"lost, so the checksum refuses the cut-over if any do, and its last pass checks "
                     f"every chunk again")
    if triggers:
        notes.append("triggers created on the new table at the cut-over: "
                     + ", ".join(f"{t.name} -> {t.new_name}" for t in triggers))
    elif trig:
        notes.append("triggers allowed: they stay on the old table")
    replicas = tuple((h, p) for h, p, _ in dialect.replica_hosts(conn))
    notes.append(f"replicas: {', '.join(f'{h}:{p}' for h, p in replicas) or 'none found'}")
    notes.append(binlog_retention(conn))
    rows = int(t["TABLE_ROWS"] or 0)
    notes.append(f"rows (estimate): {rows}")
    return Inspection(db, table, ghost, changelog, old, plan, dialect, columns, ghost_cols,
                      tuple(shared), key, rows, replicas, tuple(notes), tuple(added_unique), triggers)


_DATE = re.compile(r"^'?(\d{4})-(\d{2})-(\d{2})")


def zero_date_default(default: str | None) -> bool:
    """Is a column default (as information_schema shows it) a date with a
    zero part: 0000-00-00, 2024-00-10...?"""
    m = _DATE.match(str(default or ""))
    return bool(m) and 0 in (int(m.group(1)), int(m.group(2)), int(m.group(3)))


def check_zero_dates(conn, db: str, table: str) -> None:
    """A zero-date default that the session's sql_mode refuses (NO_ZERO_DATE,
    NO_ZERO_IN_DATE) makes creating the ghost fail (1067 Invalid default
    value); refuse now, before anything is created, and say what to do.
    The session is the migration's (``session.py``): --allow-zero-in-date
    takes those modes out of it, and then this passes."""
    mode = str(scalar(conn, "SELECT @@session.sql_mode") or "").upper().split(",")
    refusing = [m for m in ZERO_DATE_MODES if m in mode]
    if not refusing:
        return
    for r in query(conn, "SELECT COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS "
                         "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND DATA_TYPE IN "
                         "('date', 'datetime', 'timestamp') ORDER BY ORDINAL_POSITION", (db, table)):
        if zero_date_default(r["COLUMN_DEFAULT"]):
            raise Refused(f"column {r['COLUMN_NAME']} of {db}.{table} defaults to the zero date "
                          f"{r['COLUMN_DEFAULT']}, which the sql_mode ({', '.join(refusing)}) refuses: "
                          f"the ghost table could not be created; pass --allow-zero-in-date (the "
                          f"migration's sessions then allow zero dates)")


def binlog_retention(conn) -> str:
    """How long the binlog is kept: the bound on how long the migration may
    stay paused, throttled or postponed (its apply reads from there)."""
    secs = 0.0
    for var, mult in (("binlog_expire_logs_seconds", 1), ("expire_logs_days", 86400)):
        row = query_one(conn, f"SHOW GLOBAL VARIABLES LIKE '{var}'")
        if row and row["Value"] not in (None, "", "0"):
            secs = float(row["Value"]) * mult
            break
    if secs <= 0:
        return "binlog retention: unlimited (binlogs are not expired)"
    return (f"binlog retention: {secs / 3600:.0f}h: a paused, throttled or postponed migration must "
            f"resume within it")


# CREATE TEMPORARY TABLE ... LIKE refused: FULLTEXT index on a temporary
# InnoDB table (1796); partitioned table (1478, "does not support TEMPORARY")
TEMPORARY_REFUSED = (1796, 1478)


@contextmanager
def new_schema(conn, db: str, table: str, plan: AlterPlan, notes: list[str]) -> Iterator[tuple[Column, ...]]:
    """Apply the ALTER to an empty copy, ``<t>_gck``, and yield its
    columns: proves the ALTER works and shows the new schema; the copy is
    dropped on leaving.  A temporary table where the server allows one (not
    binlogged in ROW format, gone with the session); for a table with a
    FULLTEXT index or partitions, which cannot be temporary, a real one,
    created and dropped with ``sql_log_bin=0`` where the account may set it
    (the replicas never see it), else binlogged (they create and drop it
    too).  Only a real one is dropped with a plain ``DROP TABLE``: that is
    binlogged even when there is no such table."""
    tmp = qt(db, check_table_name(table))
    real = unlogged = False
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {tmp}")
            try:
                cur.execute(f"CREATE TEMPORARY TABLE {tmp} LIKE {qt(db, table)}")
            except pymysql.MySQLError as e:
                if not e.args or e.args[0] not in TEMPORARY_REFUSED:
                    raise Refused(f"cannot create a copy of {db}.{table} (as the ghost would be): "
                                  f"{e.args[-1]}") from None
                real = True
                try:
                    cur.execute("SET SESSION sql_log_bin = 0")
                    unlogged = True
                except pymysql.MySQLError:
                    pass
                notes.append(f"the ALTER is checked on a real empty table {check_table_name(table)} ({e.args[1]}; "
                             f"dropped right after, "
                             f"{'not binlogged' if unlogged else 'binlogged: no privilege to set sql_log_bin'})")
                cur.execute(f"DROP TABLE IF EXISTS {tmp}")
                cur.execute(f"CREATE TABLE {tmp} LIKE {qt(db, table)}")
            try:
                cur.execute(f"ALTER TABLE {tmp} {plan.sql}")
            except Exception as e:  # noqa: BLE001
                msg = e.args[1] if len(getattr(e, "args", ())) > 1 else str(e)
                raise Refused(f"the ALTER fails on an empty copy of {db}.{table}: {msg}") from None
        yield read_columns(conn, db, check_table_name(table))
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP {'' if real else 'TEMPORARY '}TABLE IF EXISTS {tmp}")
            if unlogged:
                cur.execute("SET SESSION sql_log_bin = 1")


__all__ = ["inspect", "Inspection", "Refused", "UniqueKey", "Column", "table_names", "qi"]
