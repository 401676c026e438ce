"""The migration's frozen status detail (what the screen, JSON and socket show)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MigrationDetail:
    database: str
    table: str
    ghost: str
    alter: str
    execute: bool
    unique_key: str = ""
    rows_estimate: int = 0
    rows_copied: int = 0
    percent: float = 0.0
    copy_rate: float = 0.0            # rows/s over the last seconds
    apply_rate: float = 0.0           # binlog row events/s
    events_applied: int = 0
    backlog_bytes: int | None = None  # binlog bytes written but not yet read by the apply
    eta_seconds: float | None = None
    heartbeat_lag: float | None = None   # seconds between a heartbeat's write and its apply
    replica_lags: tuple[tuple[str, float | None], ...] = ()
    binlog_coordinates: str = ""      # file:pos the apply has read up to
    applied_pos: str = ""             # GTID position of the last applied transaction
    chunk_size: int = 0
    dml_batch_size: int = 0
    nice_ratio: float = 0.0
    max_lag_millis: int = 0
    max_load: str = ""
    critical_load: str = ""
    throttle_query: str = ""
    postponed: bool = False
    checksum: str = ""
    cutover_attempts: int = 0
    waiting_for: str = ""             # what the migration waits for now ("" when nothing)
    notes: tuple[str, ...] = ()
    copy_rate_history: tuple[float, ...] = ()
    apply_rate_history: tuple[float, ...] = ()


def binlog_backlog(read: tuple[str, int], server: tuple[str, int],
                   sizes: dict[str, int]) -> int | None:
    """Binlog bytes the server has written past what the apply has read: the
    rest of the apply's file, every whole file in between, and the server's
    current file up to its position.  ``sizes`` (from ``SHOW BINARY LOGS``)
    is needed once the server has rotated past the apply's file; None when a
    file in between is not known (the sizes are from before the rotation)."""
    (rf, rp), (sf, sp) = read, server
    if rf == sf:
        return max(0, sp - rp)
    if rf not in sizes or sf not in sizes or rf > sf:
        return None
    return max(0, sizes[rf] - rp) + sum(v for n, v in sizes.items() if rf < n < sf) + sp
