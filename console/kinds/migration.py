"""``kind = "migration"``: triggerless online schema change (gh-ost's flags).

::

    [tasks.add-col]
    kind = "migration"
    cluster = "main"
    database = "app"
    table = "orders"
    alter = "ADD COLUMN note TEXT"
    postpone_cut_over = true     # wait for the cut-over command (the CLI never waits)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.kinds.kind import TaskKind
from console.kinds.load import load_problem
from console.options import opt, validate

COPY_FORMATS = ("statement", "row")


def _not_blank(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _trigger_suffix(value: str) -> str | None:
    if value and not re.match(r"^[A-Za-z0-9_$]+$", value):
        return "must hold only letters, digits, _ or $"
    return None


def _replicas(value: tuple[str, ...]) -> str | None:
    for r in value:
        host, _, port = r.rpartition(":")
        if not host or not port.isdigit():
            return f"{r!r} is not host:port"
    return None


@dataclass(frozen=True)
class MigrationOptions:
    database: str = opt(doc="schema of the table", check=_not_blank)
    table: str = opt(doc="table to change", check=_not_blank)
    alter: str = opt(doc='the ALTER clauses, e.g. "ADD COLUMN c INT"', check=_not_blank)
    execute: bool = opt(True, "really migrate (the CLI's default is a dry run)")
    host: str | None = opt(None, "host of the cluster to migrate on (default: its first)", flag=None)
    chunk_size: int = opt(2000, "rows per copy chunk", minimum=10, maximum=1_000_000, unit="rows",
                          live=True)
    dml_batch_size: int = opt(50, "row events per apply transaction", minimum=1, maximum=1000,
                              live=True)
    nice_ratio: float = opt(0.0, "sleep this many times a chunk's time after each chunk", minimum=0,
                            maximum=100, live=True)
    max_lag_millis: int = opt(1500, "replica lag that throttles", minimum=100, maximum=3_600_000,
                              unit="ms", live=True)
    throttle_control_replicas: tuple[str, ...] = opt(
        (), "replicas (host:port) whose lag throttles (default: the replicas found)", check=_replicas)
    max_load: str = opt("", "status thresholds that throttle, e.g. Threads_running=25",
                        check=load_problem, live=True)
    critical_load: str = opt("", "status thresholds that abort (or hibernate)", check=load_problem,
                             live=True)
    critical_load_hibernate_seconds: float = opt(
        0.0, "on critical load, pause this long instead of aborting", minimum=0, unit="s")
    throttle_query: str = opt("", "throttle while this query returns > 0", live=True)
    throttle_flag_file: str | None = opt(None, "throttle while this file exists", path=True)
    postpone_cut_over_flag_file: str | None = opt(None, "do not cut over while this file exists",
                                                  path=True)
    postpone_cut_over: bool = opt(True, "wait for the cut-over command", flag=None)
    panic_flag_file: str | None = opt(None, "panic (stop, drop the ghost) when this file appears",
                                      path=True)
    serve_socket_file: str | None = opt(None, "interactive control socket (unix)", path=True)
    cut_over_lock_timeout_seconds: int = opt(3, "lock wait of each cut-over attempt", minimum=1,
                                             maximum=3600, unit="s")
    default_retries: int = opt(60, "attempts of each cut-over, copy chunk and apply batch (a lock "
                                   "conflict is retried)", minimum=1, maximum=100_000)
    attempt_instant_ddl: bool = opt(False, "try the ALTER with ALGORITHM=INSTANT first (metadata only, "
                                           "no copy); fall back to the online copy if refused")
    exact_rowcount: bool = opt(False, "count the table's rows (SELECT COUNT(*), in the background "
                                      "beside the copy) for the progress and ETA instead of the estimate")
    analyze_ghost_table_before_cutover: bool = opt(False, "ANALYZE TABLE the ghost before the cut-over "
                                                          "(fresh index statistics for the new table)")
    hooks_path: str | None = opt(None, "directory of gh-ost hook executables (gh-ost-on-startup*, "
                                       "...; GH_OST_* environment)", path=True)
    hooks_hint: str = opt("", "free text passed to the hooks as GH_OST_HOOKS_HINT")
    hooks_hint_owner: str = opt("", "passed to the hooks as GH_OST_HOOKS_HINT_OWNER")
    hooks_hint_token: str = opt("", "passed to the hooks as GH_OST_HOOKS_HINT_TOKEN")
    hooks_status_interval: int = opt(60, "seconds between gh-ost-on-status hooks", minimum=1,
                                     maximum=86400, unit="s")
    test_on_replica: bool = opt(False, "migrate on the replica connected to, stop its replication at the "
                                       "cut-over and swap back: both tables stay to compare")
    migrate_on_replica: bool = opt(False, "migrate on the replica connected to and keep the change there "
                                          "(the master is not touched)")
    assume_master_host: str = opt("", "the master (host[:port]) of the replica, instead of its "
                                      "SHOW SLAVE STATUS (with --test-on-replica / --migrate-on-replica)")
    revert: bool = opt(False, "undo the completed migration of the table: the old table it kept, with "
                              "every change made since the cut-over applied, swapped back in")
    old_table: str = opt("", "with --revert: the old table to swap back (default: the one recorded, "
                             "<table>_del)")
    failover_wait_seconds: int = opt(120, "when the primary is lost (failover, switchover), look this "
                                          "long for the new one among the cluster's hosts (without a "
                                          "cluster: for the same host to come back)", minimum=1,
                                     maximum=86400, unit="s")
    ok_to_drop_table: bool = opt(False, "drop the old table after the cut-over")
    initially_drop_ghost_table: bool = opt(False, "drop a ghost table left by an earlier run first")
    initially_drop_old_table: bool = opt(False, "drop an old table left by an earlier run first")
    approve_renamed_columns: bool = opt(False, "accept the column renames the ALTER implies")
    allow_foreign_keys: bool = opt(False, "migrate a table with (child-side) foreign keys anyway")
    allow_triggers: bool = opt(False, "migrate a table with triggers anyway (they stay on the old table)")
    include_triggers: bool = opt(False, "create the table's triggers on the new table at the cut-over "
                                        "(named by --trigger-suffix)")
    trigger_suffix: str = opt("", "suffix added to each trigger's name on the new table, e.g. _v2 "
                                  "(needs --include-triggers)", check=_trigger_suffix)
    remove_trigger_suffix_if_exists: bool = opt(False, "a trigger name that ends in --trigger-suffix "
                                                       "loses it instead")
    allow_zero_in_date: bool = opt(False, "sessions allow zero dates (no NO_ZERO_DATE, "
                                          "NO_ZERO_IN_DATE): for tables that hold 0000-00-00")
    panic_on_warnings: bool = opt(False, "abort when a copy chunk or an apply batch would lose a row "
                                         "(a duplicate on a new unique key), naming the row")
    resume: bool = opt(False, "continue an interrupted migration from its checkpoint")
    verify_checksum: bool = opt(True, "compare the tables before the cut-over")
    checksum_chunk_size: int = opt(10000, "rows per checksum chunk", minimum=1, maximum=1_000_000,
                                   unit="rows")
    copy_threads: int = opt(0, "copy chunks in parallel on this many connections (0: chosen from "
                               "the server: its cores, at most 4; 1 where the ghost's AUTO_INCREMENT "
                               "serializes chunks)", minimum=0, maximum=64)
    defer_secondary_indexes: bool = opt(True, "build plain secondary indexes after the copy, in one "
                                              "sorted online build")
    checksum_threads: int = opt(4, "check chunks in parallel on this many connection pairs",
                                minimum=1, maximum=64)
    copy_binlog_format: str = opt("row", "how the row copy is binlogged (statement: only for "
                                         "identical replicas, see docs/migration.md)",
                                  choices=COPY_FORMATS)

    def validate(self) -> MigrationOptions:
        """Every option against its declaration (a CLI run; a config file is
        checked as it is read)."""
        return validate(self)


MIGRATION = TaskKind(
    name="migration",
    doc="triggerless online schema change: ghost table, chunked copy, binlog apply, checksum, "
        "atomic cut-over",
    options=MigrationOptions,
    factory="console.engine.migration:make_migration_task",
    screen="console.tui.screens.migration:MigrationScreen",
    detail="console.engine.migration.status:MigrationDetail",
)
