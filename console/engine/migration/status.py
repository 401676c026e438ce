"""The migration's status: the frozen detail (``MigrationDetail``: what the
screen, JSON and socket show), the binlog backlog it reports, and
``StatusReport``, mixed into ``MigrationTask`` (``task.py``), which builds
the detail, the one-line summary and the control socket's status text."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from console.engine.migration.inspect import table_names
from console.engine.migration.throttle import reason_kind
from console.kinds.load import format_load


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
    throttle_kind: str = ""           # what throttles, in a word (throttle.reason_kind); "" when not
    waiting_for: str = ""             # what the migration waits for now ("" when nothing)
    notes: tuple[str, ...] = ()
    copy_rate_history: tuple[float, ...] = ()
    apply_rate_history: tuple[float, ...] = ()
    exit_code: int = 0                # the ``migrate`` exit code once ended (3 panic, 4 critical load)
    phase_seconds: tuple[tuple[str, float], ...] = ()   # time spent in each phase so far


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


class StatusReport:
    """Status of ``MigrationTask``: detail, summary and status text."""

    def detail(self) -> MigrationDetail:
        o, ins, c, a = self.opts, self.ins, self.copier, self.applier
        d = MigrationDetail(database=o.database, table=o.table, ghost=table_names(o.table)[0], alter=o.alter,
                            execute=o.execute, chunk_size=self.chunk_size,
                            dml_batch_size=self.dml_batch_size, nice_ratio=self.nice_ratio,
                            max_lag_millis=self.max_lag_millis, max_load=format_load(self.max_load),
                            critical_load=format_load(self.critical_load),
                            throttle_query=self.throttle_query, postponed=self._postponed(),
                            cutover_attempts=self.cutover_attempts, waiting_for=self._waiting_for,
                            throttle_kind=reason_kind(self._throttle_reason),
                            exit_code=self.exit_code,
                            phase_seconds=tuple((k, round(v, 2)) for k, v in self.phase_seconds().items()))
        if ins is None:
            return d
        exact = self.rows_exact()
        rows_total = exact if exact is not None else ins.rows_estimate
        est = max(rows_total, 1)
        rows = c.rows_copied if c else 0
        rate = sum(list(self._copy_hist)[-5:]) / max(1, len(list(self._copy_hist)[-5:]))
        arate = sum(list(self._apply_hist)[-5:]) / max(1, len(list(self._apply_hist)[-5:]))
        done = bool(c and c.done)
        pct = 100.0 if done else min(99.9, 100.0 * rows / max(est, rows, 1))
        eta = 0.0 if done else ((max(est - rows, 0) / rate) if rate > 0 else None)
        backlog = None
        hb = None
        coords = applied = ""
        if a is not None:
            coords = f"{a.read_file}:{a.read_pos}" if a.read_file else ""
            applied = a.applied_pos
            if a.heartbeat_at:
                hb = max(0.0, time.time() - a.heartbeat_at)
            sb = self._server_binlog
            if sb and a.read_file:
                backlog = binlog_backlog((a.read_file, a.read_pos), sb, self._binlog_sizes)
        cs = ""
        if self.checksummer is not None:
            p = self.checksummer.progress
            cs = (f"{'verified' if p.done and not p.remaining_mismatches else 'checking'}: "
                  f"{p.chunks} chunks, {p.rows} rows, {p.mismatches} mismatches, {p.recopied} re-copied")
        return replace(d, unique_key=f"{ins.key.name} ({', '.join(ins.key.columns)})",
                       rows_estimate=rows_total, rows_copied=rows, percent=round(pct, 1),
                       copy_rate=round(rate, 1), apply_rate=round(arate, 1),
                       events_applied=a.events_applied if a else 0, backlog_bytes=backlog,
                       eta_seconds=None if eta is None else round(eta, 1), heartbeat_lag=hb,
                       replica_lags=tuple(sorted(self._replica_lags.items())),
                       binlog_coordinates=coords, applied_pos=applied, checksum=cs,
                       notes=ins.notes, copy_rate_history=tuple(self._copy_hist),
                       apply_rate_history=tuple(self._apply_hist))

    def summary(self) -> str:
        d = self.detail()
        eta = "-" if d.eta_seconds is None else f"{d.eta_seconds:.0f}s"
        thr = self._throttle_reason
        return (f"{d.database}.{d.table} {self.phase or self.state}: copied {d.rows_copied}/"
                f"{d.rows_estimate} ({d.percent:.1f}%) {d.copy_rate:.0f} rows/s, applied "
                f"{d.events_applied} events, eta {eta}"
                + (f", throttled: {thr}" if thr else "")
                + (f", waiting for {d.waiting_for}" if d.waiting_for else ""))

    def status_text(self) -> str:
        d = self.detail()
        lines = [
            f"migrating {d.database}.{d.table}: {d.alter}",
            f"state: {self.state} phase: {self.phase} since {time.strftime('%H:%M:%S', time.localtime(self._since))}",
            f"unique key: {d.unique_key}",
            f"copy: {d.rows_copied}/{d.rows_estimate} rows ({d.percent:.1f}%), {d.copy_rate:.0f} rows/s, "
            f"eta {'-' if d.eta_seconds is None else f'{d.eta_seconds:.0f}s'}",
            f"apply: {d.events_applied} events, {d.apply_rate:.0f}/s, backlog "
            f"{'-' if d.backlog_bytes is None else d.backlog_bytes} bytes, heartbeat lag "
            f"{'-' if d.heartbeat_lag is None else f'{d.heartbeat_lag * 1000:.0f}ms'}",
            f"binlog: read {d.binlog_coordinates or '-'} applied GTID {d.applied_pos or '-'}",
            "replica lag: " + (", ".join(f"{n} {'?' if v is None else f'{v * 1000:.0f}ms'}"
                                         for n, v in d.replica_lags) or "-"),
            f"throttle: {self._throttle_reason or 'no'}",
            f"settings: chunk-size={d.chunk_size} dml-batch-size={d.dml_batch_size} "
            f"nice-ratio={d.nice_ratio:g} max-lag-millis={d.max_lag_millis} "
            f"max-load={d.max_load or '-'} critical-load={d.critical_load or '-'}",
            f"checksum: {d.checksum or '-'}",
            f"postponed: {'yes' if d.postponed else 'no'}; cut-over attempts: {d.cutover_attempts}",
            f"waiting for: {d.waiting_for or '-'}",
        ]
        if self._last_error:
            lines.append(f"last error: {self._last_error}")
        return "\n".join(lines)
