"""The migration's throttle watch (gh-ost's throttler): the watch loop that
judges the throttle every 100 ms (replica lag, load, throttle query and flag
file, the manual throttle), keeps the rates and the binlog backlog for the
status, and turns a panic flag file into a panic and a critical load into a
hibernation or an abort; the gate the copy and the apply wait at while
throttled; and the checks that raise a requested panic or abort
(``Panic``, ``Aborted``).

``ThrottleWatch`` is mixed into ``MigrationTask`` (``task.py``), whose
``__init__`` holds the state it reads and writes (the live throttle settings,
``_throttled``, ``_hibernate_until``, ``_panic``, ``_abort``, the rate
histories)."""

from __future__ import annotations

import os
import time

from console.engine.migration.onreplica import own_lag
from console.engine.migration.tables import replica_lag_sql
from console.engine.migration.throttle import Observer, decide
from console.errors import UserError
from console.mysql.connection import close_quietly, connect, query


class Panic(UserError):
    exit_code = 3


class Aborted(UserError):
    exit_code = 4


class ThrottleWatch:
    """The throttle watch, the gate and the panic/abort checks of ``MigrationTask``."""

    def _gate(self) -> None:
        """Blocks while throttled (copy and apply), never during cut-over."""
        while (self._throttled or time.time() < self._hibernate_until) and not self.cutting_over \
                and not self._stop.is_set() and not self._primary_lost:
            time.sleep(0.05)

    def _check_panic(self) -> None:
        """Raise if a panic or an abort was asked for (never waits: safe
        under the cut-over's lock, where a pause must not hold writers)."""
        if self._panic:
            raise Panic(f"panic: {self._panic}; original table untouched")
        if self._abort:
            raise Aborted(self._abort)

    def _check_abort(self) -> None:
        self._check_panic()
        self._check_primary()
        if self.applier and self.applier.fatal:
            raise UserError(self.applier.fatal)
        self.checkpoint()

    def _throttled_checkpoint(self) -> None:
        """Between checksum chunks: obey the throttle, then abort checks."""
        self._check_abort()
        self._gate()
        self._check_abort()

    # ---- watcher: throttle, panic flag, rates, backlog -------------------------------

    def _replica_endpoints(self) -> dict[str, object]:
        out = {}
        if self.opts.throttle_control_replicas:
            pairs = [(r.rsplit(":", 1)[0], int(r.rsplit(":", 1)[1]))
                     for r in self.opts.throttle_control_replicas]
        else:
            pairs = list(self.ins.replicas) if self.ins else []
        for h, p in pairs:
            ep = self.ep.with_address(h, p)
            out[f"{h}:{p}"] = (lambda ep=ep: connect(ep, connect_timeout=1.0, read_timeout=2.0))
        return out

    def _watch(self) -> None:
        assert self.ins is not None
        factories, readers = self._replica_endpoints(), {}
        r = getattr(self, "on_replica", None)
        if r is not None and r.mode == "migrate":
            # gh-ost: "making sure to maintain a small replication lag" (test
            # mode stops replication at the end anyway: not watched)
            name = f"{self.ep.host}:{self.ep.port} (this replica, behind its master)"
            factories[name] = lambda: connect(self.ep, connect_timeout=1.0, read_timeout=2.0)
            readers[name] = own_lag
        obs = Observer(lambda: self._connect(read_timeout=5), factories, replica_lag_sql(self.ins),
                       lag_readers=readers)
        mon = None
        last_rows = last_events = 0
        last_t = time.monotonic()
        stop = self._watch_stop     # (a new one after a failover: ``_start_workers``)
        last_probe = time.monotonic()
        probe_conn: list = []
        while not stop.wait(0.1):
            if time.monotonic() - last_probe >= 1.0:
                last_probe = time.monotonic()
                self._probe_primary(probe_conn)    # still the primary? (``follow.py``; never raises)
            try:
                if self.opts.panic_flag_file and os.path.exists(self.opts.panic_flag_file):
                    self._request_panic(f"panic flag file {self.opts.panic_flag_file} exists")
                names = sorted(set(self.max_load) | set(self.critical_load))
                o = obs.observe(names, self.throttle_query, self.opts.throttle_flag_file,
                                self.manual_throttle)
                v = decide(o, max_lag_millis=self.max_lag_millis, max_load=self.max_load,
                           critical_load=self.critical_load)
                self._replica_lags = dict(o.replica_lags)
                if v.critical:
                    if self.opts.critical_load_hibernate_seconds > 0:
                        self._hibernate_until = time.time() + self.opts.critical_load_hibernate_seconds
                        self.log(f"{v.critical}: hibernating {self.opts.critical_load_hibernate_seconds:g}s")
                    elif not self._abort:
                        self._abort = f"{v.critical}: aborted; original table untouched, ghost dropped"
                reason = v.reason
                if not reason and time.time() < self._hibernate_until:
                    reason = "hibernating after critical load"
                self._throttled = bool(reason)
                self.set_throttle(reason)
                now = time.monotonic()
                if now - last_t >= 1.0:
                    rows = self.copier.rows_copied if self.copier else 0
                    evs = self.applier.events_applied if self.applier else 0
                    self._copy_hist.append((rows - last_rows) / (now - last_t))
                    self._apply_hist.append((evs - last_events) / (now - last_t))
                    last_rows, last_events, last_t = rows, evs, now
                    if mon is None:
                        mon = self._connect(read_timeout=5)
                    self._server_binlog = sb = self.dialect.binlog_position(mon)
                    a = self.applier
                    if sb and a is not None and a.read_file and a.read_file != sb[0]:
                        # rotated past the apply's file: the backlog spans files
                        self._binlog_sizes = {str(r["Log_name"]): int(r["File_size"])
                                              for r in query(mon, "SHOW BINARY LOGS")}
            except Exception as e:  # noqa: BLE001 - observation errors never kill the task
                self.set_error(f"watch: {e}")
                mon = None
            finally:
                self._observed.set()
        obs.close()
        if mon is not None:
            mon.close()
        close_quietly(*probe_conn)

    def _request_panic(self, reason: str) -> None:
        if not self._panic:
            self._panic = reason
            self.log(f"PANIC: {reason}")
            self._stop.set()
            self._resume.set()
