"""Migration options (one frozen dataclass) and the ``[tasks.NAME]`` parser
for ``kind = "migration"``.  The CLI fills the same dataclass from gh-ost's
flag names."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from console.config import Table, register_task_kind
from console.engine.migration.throttle import parse_load

COPY_FORMATS = ("statement", "row")
CHUNK_SIZE_RANGE = (10, 1_000_000)   # the CLI's validate() and the config parser share these
DML_BATCH_RANGE = (1, 1000)


@dataclass(frozen=True)
class MigrationOptions:
    database: str
    table: str
    alter: str
    execute: bool = True
    host: str | None = None                  # config: host name in the cluster (default: first)
    chunk_size: int = 2000
    dml_batch_size: int = 50
    nice_ratio: float = 0.0
    max_lag_millis: int = 1500
    throttle_control_replicas: tuple[str, ...] = ()   # host:port; empty: discovered replicas
    max_load: str = ""
    critical_load: str = ""
    critical_load_hibernate_seconds: float = 0.0
    throttle_query: str = ""
    throttle_flag_file: str | None = None
    postpone_cut_over_flag_file: str | None = None
    postpone_cut_over: bool = True           # wait for the cut-over command (the CLI passes False)
    panic_flag_file: str | None = None
    serve_socket_file: str | None = None
    cut_over_lock_timeout_seconds: int = 3
    default_retries: int = 60
    ok_to_drop_table: bool = False
    initially_drop_ghost_table: bool = False
    initially_drop_old_table: bool = False
    approve_renamed_columns: bool = False
    allow_foreign_keys: bool = False
    allow_triggers: bool = False
    allow_zero_in_date: bool = False          # sessions without NO_ZERO_DATE / NO_ZERO_IN_DATE
    resume: bool = False
    verify_checksum: bool = True
    checksum_chunk_size: int = 10000
    copy_threads: int = 1
    defer_secondary_indexes: bool = True      # plain secondary indexes built after the copy
    checksum_threads: int = 4
    copy_binlog_format: str = "row"           # how the row copy is binlogged: row | statement

    def validate(self) -> MigrationOptions:
        from console.errors import UserError

        lo, hi = CHUNK_SIZE_RANGE
        if not lo <= self.chunk_size <= hi:
            raise UserError(f"--chunk-size must be between {lo} and {hi}, got {self.chunk_size}")
        lo, hi = DML_BATCH_RANGE
        if not lo <= self.dml_batch_size <= hi:
            raise UserError(f"--dml-batch-size must be between {lo} and {hi}, got {self.dml_batch_size}")
        if self.nice_ratio < 0:
            raise UserError(f"--nice-ratio must be >= 0, got {self.nice_ratio}")
        if self.max_lag_millis < 100:
            raise UserError(f"--max-lag-millis must be at least 100, got {self.max_lag_millis}")
        if self.cut_over_lock_timeout_seconds < 1:
            raise UserError("--cut-over-lock-timeout-seconds must be at least 1")
        if self.default_retries < 1:
            raise UserError("--default-retries must be at least 1")
        for flag, value, lo, hi in (("--copy-threads", self.copy_threads, 1, 64),
                                    ("--checksum-threads", self.checksum_threads, 1, 64),
                                    ("--checksum-chunk-size", self.checksum_chunk_size, 1, CHUNK_SIZE_RANGE[1])):
            if not lo <= value <= hi:
                raise UserError(f"{flag} must be between {lo} and {hi}, got {value}")
        if self.copy_binlog_format not in COPY_FORMATS:
            raise UserError(f"--copy-binlog-format must be statement or row, got {self.copy_binlog_format!r}")
        parse_load(self.max_load, "--max-load")
        parse_load(self.critical_load, "--critical-load")
        for name in ("database", "table", "alter"):
            if not str(getattr(self, name)).strip():
                raise UserError(f"--{name} is required and must not be empty")
        return self


# the config parser's defaults are the dataclass's: one default per option
# (postpone_cut_over was False here and True in the parser)
_D = {f.name: f.default for f in fields(MigrationOptions) if f.default is not MISSING}


def _parse(t: Table) -> MigrationOptions:
    def opt_path(name):
        p = t.path_value(name, None)
        return str(p) if p else None

    o = MigrationOptions(
        database=t.get("database", str),
        table=t.get("table", str),
        alter=t.get("alter", str),
        host=t.get("host", str, _D["host"]),
        chunk_size=t.get("chunk_size", int, _D["chunk_size"], minimum=CHUNK_SIZE_RANGE[0], maximum=CHUNK_SIZE_RANGE[1]),
        dml_batch_size=t.get("dml_batch_size", int, _D["dml_batch_size"], minimum=DML_BATCH_RANGE[0], maximum=DML_BATCH_RANGE[1]),
        nice_ratio=t.get("nice_ratio", float, _D["nice_ratio"], minimum=0),
        max_lag_millis=t.get("max_lag_millis", int, _D["max_lag_millis"], minimum=100),
        throttle_control_replicas=tuple(t.get("throttle_control_replicas", list, _D["throttle_control_replicas"])),
        max_load=t.get("max_load", str, _D["max_load"]),
        critical_load=t.get("critical_load", str, _D["critical_load"]),
        critical_load_hibernate_seconds=t.get("critical_load_hibernate_seconds", float, _D["critical_load_hibernate_seconds"], minimum=0),
        throttle_query=t.get("throttle_query", str, _D["throttle_query"]),
        throttle_flag_file=opt_path("throttle_flag_file"),
        postpone_cut_over_flag_file=opt_path("postpone_cut_over_flag_file"),
        postpone_cut_over=t.get("postpone_cut_over", bool, _D["postpone_cut_over"]),
        panic_flag_file=opt_path("panic_flag_file"),
        serve_socket_file=opt_path("serve_socket_file"),
        cut_over_lock_timeout_seconds=t.get("cut_over_lock_timeout_seconds", int, _D["cut_over_lock_timeout_seconds"], minimum=1),
        default_retries=t.get("default_retries", int, _D["default_retries"], minimum=1),
        ok_to_drop_table=t.get("ok_to_drop_table", bool, _D["ok_to_drop_table"]),
        initially_drop_ghost_table=t.get("initially_drop_ghost_table", bool, _D["initially_drop_ghost_table"]),
        initially_drop_old_table=t.get("initially_drop_old_table", bool, _D["initially_drop_old_table"]),
        approve_renamed_columns=t.get("approve_renamed_columns", bool, _D["approve_renamed_columns"]),
        allow_foreign_keys=t.get("allow_foreign_keys", bool, _D["allow_foreign_keys"]),
        allow_triggers=t.get("allow_triggers", bool, _D["allow_triggers"]),
        allow_zero_in_date=t.get("allow_zero_in_date", bool, _D["allow_zero_in_date"]),
        resume=t.get("resume", bool, _D["resume"]),
        verify_checksum=t.get("verify_checksum", bool, _D["verify_checksum"]),
        execute=t.get("execute", bool, _D["execute"]),
        copy_threads=t.get("copy_threads", int, _D["copy_threads"], minimum=1),
        defer_secondary_indexes=t.get("defer_secondary_indexes", bool, _D["defer_secondary_indexes"]),
        checksum_threads=t.get("checksum_threads", int, _D["checksum_threads"], minimum=1),
        checksum_chunk_size=t.get("checksum_chunk_size", int, _D["checksum_chunk_size"], minimum=1),
        copy_binlog_format=t.get("copy_binlog_format", str, _D["copy_binlog_format"]),
    )
    if o.copy_binlog_format not in COPY_FORMATS:
        raise t.error("copy_binlog_format", f"must be \"statement\" or \"row\", got {o.copy_binlog_format!r}")
    for r in o.throttle_control_replicas:
        if not isinstance(r, str) or ":" not in r:
            raise t.error("throttle_control_replicas", f"items must be \"host:port\" strings, got {r!r}")
    for key in ("max_load", "critical_load"):
        try:
            parse_load(getattr(o, key), key)
        except Exception as e:  # noqa: BLE001
            raise t.error(key, str(e).removeprefix(f"{key}: ")) from None
    return o


register_task_kind("migration", _parse)
