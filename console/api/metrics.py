"""Prometheus metrics of one engine (issue 14): ``registry_for(engine)`` and
``render(registry)``.

A custom collector reads the engine's status snapshots at scrape time (no
background thread: a removed task's series are gone at the next scrape,
nothing is ever stale).  Every metric is declared once in ``METRICS`` (name,
type, labels, meaning); ``docs/api.md`` ("Metrics") lists them and a unit
test keeps the two in step.  Names carry the ``dbops_`` prefix and their
unit (``_seconds``, ``_bytes``); counters end in ``_total``.

Served by ``serve --metrics-listen HOST:PORT`` (an open endpoint, through
``prometheus_client``'s own HTTP server) and mounted at ``/metrics`` by the
HTTP API.  Layer: top (imports the engine; the engine never imports this).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from console.engine.backup.status import BackupStatus
from console.engine.failover.task import FailoverDetail
from console.engine.migration.status import MigrationDetail
from console.engine.migration.throttle import REASON_KINDS
from console.engine.relay.status import RelayStatus
from console.engine.task import STATES, TaskStatus
from console.engine.topology.monitor import MonitorDetail
from console.errors import UserError

GAUGE, COUNTER = "gauge", "counter"
T = ("task", "cluster")  # the labels of a task's own metrics


@dataclass(frozen=True)
class MetricSpec:
    name: str
    type: str                 # gauge | counter
    labels: tuple[str, ...]
    help: str

    @property
    def unit(self) -> str:
        """The unit, as the name says it (docs/api.md's unit column)."""
        base = self.name.removesuffix("_total")
        if base.endswith("_timestamp_seconds"):
            return "Unix time, seconds"
        for unit in ("seconds", "bytes"):
            if base.endswith("_" + unit):
                return unit
        return "rows" if "_rows_" in base else "1"


def _m(name: str, type_: str, labels: tuple[str, ...], help_: str) -> MetricSpec:
    return MetricSpec(name, type_, labels, help_)


METRICS: tuple[MetricSpec, ...] = (
    # every task (monitors included)
    _m("dbops_task_state", GAUGE, ("task", "kind", "cluster", "state"),
       "1 for the task's current state, 0 for the other states (new, running, paused, done, failed)"),
    _m("dbops_task_phase", GAUGE, ("task", "kind", "cluster", "phase"),
       "1 for the task's current phase (one series; none while the task has no phase)"),
    _m("dbops_task_since_timestamp_seconds", GAUGE, ("task", "kind", "cluster"),
       "when the task entered its current state or phase (Unix time)"),
    # hosts, from each cluster's monitor
    _m("dbops_host_up", GAUGE, ("cluster", "host"),
       "1 when the monitor's last round reached the host, else 0"),
    _m("dbops_host_role", GAUGE, ("cluster", "host", "role"),
       "1 for the host's role (primary, replica, intermediate, unknown), 0 for the others"),
    _m("dbops_host_read_only", GAUGE, ("cluster", "host"), "1 when read_only is on (reachable hosts)"),
    _m("dbops_host_replication_lag_seconds", GAUGE, ("cluster", "host", "method"),
       "replication lag of a replica: method=heartbeat (the heartbeat row's age, when the "
       "cluster writes one) and method=seconds_behind (the server's Seconds_Behind_Master); "
       "absent when unknown"),
    _m("dbops_host_replication_io_running", GAUGE, ("cluster", "host"),
       "1 when the replica's IO thread runs (Yes), 0 when not (No, Connecting)"),
    _m("dbops_host_replication_sql_running", GAUGE, ("cluster", "host"),
       "1 when the replica's SQL thread runs, else 0"),
    _m("dbops_host_binlog_bytes", GAUGE, ("cluster", "host"),
       "total size of the binary logs the host keeps (SHOW BINARY LOGS)"),
    _m("dbops_monitor_rounds_total", COUNTER, ("cluster",),
       "topology discovery rounds the cluster's monitor has completed"),
    # relay
    _m("dbops_relay_connected", GAUGE, T, "1 while the relay's dump session is connected"),
    _m("dbops_relay_received_bytes_total", COUNTER, T, "binlog bytes this run received and wrote to its relay files"),
    _m("dbops_relay_events_total", COUNTER, T, "binlog events received by this run"),
    _m("dbops_relay_lag_seconds", GAUGE, T,
       "how far the relay is behind its upstream in time (0 when caught up; absent when unknown)"),
    _m("dbops_relay_lag_bytes", GAUGE, T,
       "binlog bytes the upstream has written past the relayed position (absent when unknown)"),
    _m("dbops_relay_disk_bytes", GAUGE, T, "size of the relay's files on disk"),
    _m("dbops_relay_files", GAUGE, T, "number of relay files"),
    _m("dbops_relay_reconnects_total", COUNTER, T, "dump sessions the relay had to start again"),
    # migration
    _m("dbops_migration_rows_copied", GAUGE, T, "rows copied into the ghost table so far"),
    _m("dbops_migration_rows_estimated", GAUGE, T, "the table's estimated row count"),
    _m("dbops_migration_backlog_bytes", GAUGE, T,
       "binlog bytes written but not yet read by the binlog apply (absent when unknown)"),
    _m("dbops_migration_heartbeat_lag_seconds", GAUGE, T,
       "seconds between a heartbeat's write and its apply (absent when unknown)"),
    _m("dbops_migration_events_applied_total", COUNTER, T, "binlog row events applied to the ghost table"),
    _m("dbops_migration_throttled", GAUGE, ("task", "cluster", "reason"),
       "1 for what throttles the migration now (reason: " + ", ".join(k for _, k in REASON_KINDS)
       + ", other), 0 for the other reasons; all 0 when not throttled"),
    _m("dbops_migration_cutover_attempts_total", COUNTER, T, "cut-over attempts made"),
    # failover
    _m("dbops_failover_recoveries_total", COUNTER, ("task", "cluster", "kind", "outcome"),
       "recoveries this failover task ran (kind: switchover, failover; outcome: ok, failed, "
       "refused); dry runs are not counted"),
    _m("dbops_failover_last_recovery_duration_seconds", GAUGE, T,
       "how long the last recovery took, start to end (absent before the first)"),
    _m("dbops_failover_last_recovery_timestamp_seconds", GAUGE, T,
       "when the last recovery started (Unix time; absent before the first)"),
    _m("dbops_failover_recovering", GAUGE, T, "1 while a switchover or failover runs"),
    _m("dbops_failover_auto_enabled", GAUGE, T, "1 when automatic failover is on"),
    _m("dbops_failover_blocked", GAUGE, T,
       "1 when an automatic failover is blocked (anti-flapping, or a failed one not acknowledged)"),
    # backup
    _m("dbops_backup_connected", GAUGE, T, "1 while the backup's binlog session is connected"),
    _m("dbops_backup_checkpoint_age_seconds", GAUGE, T,
       "the live recovery point: how old the oldest source change not yet covered by the "
       "durable checkpoint is (0 when caught up; absent until the source was polled)"),
    _m("dbops_backup_checkpoint_timestamp_seconds", GAUGE, T,
       "commit time of the newest transaction in the checkpoint (Unix time)"),
    _m("dbops_backup_segments", GAUGE, T, "binlog segments in storage"),
    _m("dbops_backup_segment_bytes", GAUGE, T, "stored size of the binlog segments"),
    _m("dbops_backup_snapshots", GAUGE, T, "base snapshots in storage"),
    _m("dbops_backup_snapshot_bytes", GAUGE, T, "stored size of the base snapshots"),
    _m("dbops_backup_last_snapshot_age_seconds", GAUGE, T,
       "seconds since the newest base snapshot finished (absent when there is none)"),
    _m("dbops_backup_transactions_total", COUNTER, T, "transactions stored by this run"),
    # the collector itself
    _m("dbops_metrics_collect_errors_total", COUNTER, (),
       "task snapshots that could not be read during a scrape (the task is left out of that scrape)"),
)

SPECS: dict[str, MetricSpec] = {s.name: s for s in METRICS}
ROLES = ("primary", "replica", "intermediate", "unknown")
THROTTLE_REASONS = tuple(k for _, k in REASON_KINDS) + ("other",)
RECOVERY_KINDS = ("switchover", "failover")
RECOVERY_OUTCOMES = ("ok", "failed", "refused")


class _Families:
    """The scrape's metric families, made on first use, in ``METRICS`` order."""

    def __init__(self):
        self._fams: dict[str, Metric] = {}

    def add(self, name: str, labels: Iterable[str], value: float | int | bool | None) -> None:
        if value is None:
            return
        spec = SPECS[name]
        fam = self._fams.get(name)
        if fam is None:
            cls = CounterMetricFamily if spec.type == COUNTER else GaugeMetricFamily
            fam = self._fams[name] = cls(name, spec.help, labels=list(spec.labels))
        fam.add_metric([str(v) for v in labels], float(value))

    def __iter__(self) -> Iterator[Metric]:
        return (self._fams[s.name] for s in METRICS if s.name in self._fams)


def families(statuses: Iterable[TaskStatus], clusters: Mapping[str, str], *,
             now: float | None = None, errors: int = 0) -> list[Metric]:
    """Every metric of these task snapshots (pure: the collector and the unit
    tests call it); ``clusters``: the cluster each task is declared in
    (task id -> name; a monitor's and a failover task's own cluster wins)."""
    now = time.time() if now is None else now
    f = _Families()
    for st in statuses:
        cluster = clusters.get(st.task_id, "")
        d = st.detail
        if isinstance(d, (MonitorDetail, FailoverDetail)):
            cluster = d.cluster
        _task(f, st, cluster)
        if isinstance(d, MonitorDetail):
            _monitor(f, d)
        elif isinstance(d, RelayStatus):
            _relay(f, (st.task_id, cluster), d)
        elif isinstance(d, MigrationDetail):
            _migration(f, (st.task_id, cluster), d)
        elif isinstance(d, FailoverDetail):
            _failover(f, (st.task_id, cluster), d)
        elif isinstance(d, BackupStatus):
            _backup(f, (st.task_id, cluster), d, now)
    f.add("dbops_metrics_collect_errors_total", (), errors)
    return list(f)


def _flag(v: Any) -> int:
    return 1 if v else 0


def _task(f: _Families, st: TaskStatus, cluster: str) -> None:
    for s in STATES:
        f.add("dbops_task_state", (st.task_id, st.kind, cluster, s), st.state == s)
    if st.phase:
        f.add("dbops_task_phase", (st.task_id, st.kind, cluster, st.phase), 1)
    f.add("dbops_task_since_timestamp_seconds", (st.task_id, st.kind, cluster), st.since)


def _monitor(f: _Families, d: MonitorDetail) -> None:
    f.add("dbops_monitor_rounds_total", (d.cluster,), d.rounds)
    if d.topology is None:
        return
    for h in d.topology.hosts:
        key = (d.cluster, h.name)
        f.add("dbops_host_up", key, _flag(h.reachable))
        role = h.role if h.role in ROLES else "unknown"
        for r in ROLES:
            f.add("dbops_host_role", (*key, r), r == role)
        if not h.reachable:
            continue
        f.add("dbops_host_read_only", key, _flag(h.read_only))
        f.add("dbops_host_binlog_bytes", key, h.binlog_bytes)
        if h.channels:
            f.add("dbops_host_replication_lag_seconds", (*key, "heartbeat"), h.heartbeat_lag)
            f.add("dbops_host_replication_lag_seconds", (*key, "seconds_behind"), h.seconds_behind)
            f.add("dbops_host_replication_io_running", key, _flag(h.io_thread == "Yes"))
            f.add("dbops_host_replication_sql_running", key, _flag(h.sql_thread == "Yes"))


def _relay(f: _Families, t: tuple[str, str], d: RelayStatus) -> None:
    f.add("dbops_relay_connected", t, _flag(d.connected))
    f.add("dbops_relay_received_bytes_total", t, d.total_bytes)
    f.add("dbops_relay_events_total", t, d.total_events)
    f.add("dbops_relay_lag_seconds", t, d.seconds_behind)
    f.add("dbops_relay_lag_bytes", t, d.bytes_behind)
    f.add("dbops_relay_disk_bytes", t, d.relay_bytes)
    f.add("dbops_relay_files", t, d.relay_files)
    f.add("dbops_relay_reconnects_total", t, d.retries)


def _migration(f: _Families, t: tuple[str, str], d: MigrationDetail) -> None:
    f.add("dbops_migration_rows_copied", t, d.rows_copied)
    f.add("dbops_migration_rows_estimated", t, d.rows_estimate)
    f.add("dbops_migration_backlog_bytes", t, d.backlog_bytes)
    f.add("dbops_migration_heartbeat_lag_seconds", t, d.heartbeat_lag)
    f.add("dbops_migration_events_applied_total", t, d.events_applied)
    for r in THROTTLE_REASONS:
        f.add("dbops_migration_throttled", (*t, r), d.throttle_kind == r)
    f.add("dbops_migration_cutover_attempts_total", t, d.cutover_attempts)


def _failover(f: _Families, t: tuple[str, str], d: FailoverDetail) -> None:
    counts = {(k, o): n for k, o, n in d.recoveries}
    outcomes = RECOVERY_OUTCOMES + tuple(sorted({o for _, o in counts} - set(RECOVERY_OUTCOMES)))
    for k in RECOVERY_KINDS:
        for o in outcomes:
            f.add("dbops_failover_recoveries_total", (*t, k, o), counts.get((k, o), 0))
    rep = d.last_report
    if rep is not None and not rep.dry_run:
        f.add("dbops_failover_last_recovery_duration_seconds", t,
              None if rep.total_ms is None else rep.total_ms / 1000)
        f.add("dbops_failover_last_recovery_timestamp_seconds", t, rep.started)
    f.add("dbops_failover_recovering", t, _flag(d.recovering))
    f.add("dbops_failover_auto_enabled", t, _flag(d.auto))
    f.add("dbops_failover_blocked", t, _flag(d.blocked))


def _backup(f: _Families, t: tuple[str, str], d: BackupStatus, now: float) -> None:
    f.add("dbops_backup_connected", t, _flag(d.connected))
    f.add("dbops_backup_checkpoint_age_seconds", t, d.lag_seconds)
    f.add("dbops_backup_checkpoint_timestamp_seconds", t, d.checkpoint_time or None)
    f.add("dbops_backup_segments", t, d.segments)
    f.add("dbops_backup_segment_bytes", t, d.segment_bytes)
    f.add("dbops_backup_snapshots", t, len(d.snapshots))
    f.add("dbops_backup_snapshot_bytes", t, d.snapshot_bytes)
    finished = [float(s[2]) for s in d.snapshots if len(s) > 2 and s[2]]
    f.add("dbops_backup_last_snapshot_age_seconds", t,
          max(0.0, now - max(finished)) if finished else None)
    f.add("dbops_backup_transactions_total", t, d.transactions)


class EngineCollector:
    """Reads ``engine``'s snapshots at each scrape (``prometheus_client``
    calls ``collect`` from the thread that serves the request)."""

    def __init__(self, engine):
        self.engine = engine
        self.errors = 0

    def describe(self) -> list[Metric]:
        return []  # registering must not take a snapshot; names are checked by the tests

    def collect(self) -> Iterator[Metric]:
        statuses = []
        for task in self.engine.tasks():
            try:
                statuses.append(task.status())
            except Exception:  # noqa: BLE001 - one broken snapshot must not fail the scrape
                self.errors += 1
        yield from families(statuses, self._clusters(), errors=self.errors)

    def _clusters(self) -> dict[str, str]:
        config = self.engine.config
        default = next(iter(config.clusters), "") if len(config.clusters) == 1 else ""
        return {name: tc.cluster or default for name, tc in config.tasks.items()}


def registry_for(engine) -> CollectorRegistry:
    """A registry of ``engine``'s metrics and the process's own (``process_*``:
    CPU, memory, open files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """The exposition of one scrape and its content type: Prometheus's text
    format, or OpenMetrics when ``accept`` (the request's Accept header)
    asks for it."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


# ---- the open endpoint (serve --metrics-listen) --------------------------------------


def parse_host_port(value: str, flag: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 address in brackets: ``[::1]:9108``); a
    one-line ``UserError`` naming ``flag`` otherwise."""
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{flag} {value!r}: give HOST:PORT, e.g. 127.0.0.1:9108 "
                        f"(a port from 1 to 65535; an IPv6 address in brackets)")
    return host, int(port)


class MetricsServer:
    """``prometheus_client``'s own HTTP server for ``registry`` (every path
    answers with the metrics; no token: an open address), in a thread."""

    def __init__(self, value: str, registry: CollectorRegistry, flag: str = "--metrics-listen"):
        host, port = parse_host_port(value, flag)
        try:
            self._httpd, self._thread = start_http_server(port, host, registry=registry)
        except OSError as e:
            why = e.strerror or str(e)
            raise UserError(f"{flag} {value}: cannot listen there ({why}): give a free port "
                            f"on an address of this machine") from None
        self.address = f"{value}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


__all__ = ["METRICS", "MetricSpec", "EngineCollector", "MetricsServer", "families",
           "parse_host_port", "registry_for", "render"]
