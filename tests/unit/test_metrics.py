"""Prometheus metrics without a server: the mapping of each kind's status
snapshot to series (pure: snapshots built from the engine's own frozen
dataclasses), the names' conventions, docs/api.md in step with the
declarations, the collector over a real ``Engine`` (a removed task leaves
the scrape; a broken snapshot does not fail it), the failover task's
recovery counter, the throttle reason kinds, and ``--metrics-listen``
parsing.  Against real servers and a real Prometheus:
tests/integration/test_metrics.py."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pymysql
import pytest
from prometheus_client.parser import text_string_to_metric_families

from console.api.metrics import (
    COUNTER,
    METRICS,
    THROTTLE_REASONS,
    EngineCollector,
    families,
    parse_host_port,
    registry_for,
    render,
)
from console.config import TaskConfig, load_config, parse_config
from console.engine.backup.status import BackupStatus
from console.engine.engine import Engine
from console.engine.failover.model import RecoveryReport
from console.engine.failover.task import FailoverDetail, FailoverTask
from console.engine.migration.status import MigrationDetail
from console.engine.migration.throttle import Observation, decide, reason_kind
from console.engine.relay.status import RelayStatus
from console.engine.task import TaskStatus
from console.engine.topology.model import Topology
from console.engine.topology.monitor import MonitorDetail, MonitorTask
from console.errors import UserError
from console.mysql.flavor import ReplicaStatus
from console.mysql.probe import HostState, binlog_total_bytes

ROOT = Path(__file__).resolve().parents[2]


def status(task_id: str, kind: str, detail, state: str = "running", phase: str = "",
           throttle: str = "") -> TaskStatus:
    return TaskStatus(task_id, kind, state, phase, 1000.0, "", throttle, "", detail)


def channel(io: str = "Yes", sql: str = "Yes", behind: int | None = 3) -> ReplicaStatus:
    return ReplicaStatus("", "127.0.0.1", 3306, io, sql, behind, 0, "", 0, "", "Slave_Pos",
                         "b.000001", 4, "r.000001", 4, 0, 1, "")


def topology() -> Topology:
    return Topology("c1", (
        HostState("db1", "127.0.0.1:3306", True, role="primary", binlog_file="b.000001",
                  binlog_pos=400, binlog_bytes=1234),
        HostState("db2", "127.0.0.1:3307", True, role="replica", read_only=True,
                  channels=(channel(behind=3),), heartbeat_lag=0.25, upstream="127.0.0.1:3306"),
        HostState("db3", "127.0.0.1:3308", True, role="replica", read_only=True,
                  channels=(channel(io="Connecting", behind=None),)),
        HostState("db4", "127.0.0.1:3309", False, error="gone", role="replica"),
    ))


def relay() -> RelayStatus:
    return RelayStatus(
        upstream="db1", upstream_identity="x", connected=True, upstream_file="b.000001",
        upstream_pos=500, upstream_gtid="0-1-9", received_file="b.000001", received_pos=400,
        relayed_subdir="s", relayed_file="b.000001", relayed_pos=400, relayed_gtid="0-1-8",
        bytes_behind=100, seconds_behind=1.5, events_per_s=0.0, mb_per_s=0.0, total_events=42,
        total_bytes=4096, retries=2, last_error="", relay_dir="/r", relay_bytes=8192,
        relay_files=3, upstream_retention="", caught_up=False)


def backup(snapshots=((("s1", "mariadb-dump", 900.0, 10, "0-1-1")),)) -> BackupStatus:
    return BackupStatus(
        source="db1", connected=True, storage="/b", checkpoint_gtid="0-1-8", checkpoint_time=950.0,
        checkpoint_seq=4, source_gtid="0-1-9", lag_seconds=0.75, caught_up=False, segments=5,
        segment_bytes=5000, snapshot_bytes=10, snapshots=snapshots, transactions=17)


def samples(metrics) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for m in metrics for s in m.samples}


def value(got, name: str, **labels) -> float | None:
    return got.get((name, frozenset(labels.items())))


# ---- the mapping ---------------------------------------------------------------------


def test_hosts_from_the_monitor_snapshot():
    mon = MonitorDetail("c1", topology(), (), 1.0, 7, True)
    got = samples(families([status("monitor:c1", "monitor", mon, phase="watching")], {}))
    h = {"cluster": "c1"}
    assert value(got, "dbops_host_up", **h, host="db1") == 1
    assert value(got, "dbops_host_up", **h, host="db4") == 0
    assert value(got, "dbops_host_role", **h, host="db1", role="primary") == 1
    assert value(got, "dbops_host_role", **h, host="db1", role="replica") == 0
    assert value(got, "dbops_host_role", **h, host="db4", role="replica") == 1
    assert value(got, "dbops_host_read_only", **h, host="db1") == 0
    assert value(got, "dbops_host_read_only", **h, host="db2") == 1
    assert value(got, "dbops_host_read_only", **h, host="db4") is None  # unreachable: not known
    assert value(got, "dbops_host_binlog_bytes", **h, host="db1") == 1234
    assert value(got, "dbops_host_replication_lag_seconds", **h, host="db2", method="heartbeat") == 0.25
    assert value(got, "dbops_host_replication_lag_seconds", **h, host="db2", method="seconds_behind") == 3
    assert value(got, "dbops_host_replication_lag_seconds", **h, host="db3", method="seconds_behind") is None
    assert value(got, "dbops_host_replication_io_running", **h, host="db2") == 1
    assert value(got, "dbops_host_replication_io_running", **h, host="db3") == 0
    assert value(got, "dbops_host_replication_sql_running", **h, host="db3") == 1
    assert value(got, "dbops_host_replication_io_running", **h, host="db1") is None  # not a replica
    assert value(got, "dbops_monitor_rounds_total", cluster="c1") == 7
    t = {"task": "monitor:c1", "kind": "monitor", "cluster": "c1"}
    assert value(got, "dbops_task_state", **t, state="running") == 1
    assert value(got, "dbops_task_state", **t, state="failed") == 0
    assert value(got, "dbops_task_phase", **t, phase="watching") == 1
    assert value(got, "dbops_task_since_timestamp_seconds", **t) == 1000.0


def test_a_monitor_before_its_first_round_has_no_host_series():
    mon = MonitorDetail("c1", None, (), 1.0, 0, False)
    got = samples(families([status("monitor:c1", "monitor", mon, state="new")], {}))
    assert not [k for k in got if k[0].startswith("dbops_host_")]
    assert value(got, "dbops_task_state", task="monitor:c1", kind="monitor", cluster="c1", state="new") == 1


def test_relay_series():
    got = samples(families([status("r1", "relay", relay())], {"r1": "c1"}))
    t = {"task": "r1", "cluster": "c1"}
    assert value(got, "dbops_relay_connected", **t) == 1
    assert value(got, "dbops_relay_received_bytes_total", **t) == 4096
    assert value(got, "dbops_relay_events_total", **t) == 42
    assert value(got, "dbops_relay_lag_seconds", **t) == 1.5
    assert value(got, "dbops_relay_lag_bytes", **t) == 100
    assert value(got, "dbops_relay_disk_bytes", **t) == 8192
    assert value(got, "dbops_relay_files", **t) == 3
    assert value(got, "dbops_relay_reconnects_total", **t) == 2
    unknown = samples(families([status("r1", "relay", replace(relay(), seconds_behind=None,
                                                              bytes_behind=None))], {}))
    assert value(unknown, "dbops_relay_lag_seconds", task="r1", cluster="") is None
    assert value(unknown, "dbops_relay_lag_bytes", task="r1", cluster="") is None


def test_migration_series_and_the_throttle_reason_as_a_label():
    d = MigrationDetail("db", "t", "_t_gho", "ADD x INT", True, rows_estimate=1000, rows_copied=250,
                        backlog_bytes=77, heartbeat_lag=0.1, events_applied=9, cutover_attempts=2,
                        throttle_kind="replica-lag")
    got = samples(families([status("m1", "migration", d, phase="copying",
                                   throttle="lag of db2 2000ms > max-lag-millis 1500")], {"m1": "c1"}))
    t = {"task": "m1", "cluster": "c1"}
    assert value(got, "dbops_migration_rows_copied", **t) == 250
    assert value(got, "dbops_migration_rows_estimated", **t) == 1000
    assert value(got, "dbops_migration_backlog_bytes", **t) == 77
    assert value(got, "dbops_migration_heartbeat_lag_seconds", **t) == 0.1
    assert value(got, "dbops_migration_events_applied_total", **t) == 9
    assert value(got, "dbops_migration_cutover_attempts_total", **t) == 2
    assert {r: value(got, "dbops_migration_throttled", **t, reason=r) for r in THROTTLE_REASONS} == \
        {r: (1 if r == "replica-lag" else 0) for r in THROTTLE_REASONS}
    free = samples(families([status("m1", "migration", replace(d, throttle_kind=""))], {}))
    assert all(value(free, "dbops_migration_throttled", task="m1", cluster="", reason=r) == 0
               for r in THROTTLE_REASONS)


def test_failover_series():
    rep = RecoveryReport("switchover", "c1", False, "a", "b", "ok", (), total_ms=2500.0, started=900.0)
    d = FailoverDetail("c1", None, None, (), True, "", (), rep, "", 1.0,
                       recoveries=(("switchover", "ok", 2), ("failover", "failed", 1)))
    got = samples(families([status("failover:c1", "failover", d)], {"failover:c1": "other"}))
    t = {"task": "failover:c1", "cluster": "c1"}  # the task's own cluster
    assert value(got, "dbops_failover_recoveries_total", **t, kind="switchover", outcome="ok") == 2
    assert value(got, "dbops_failover_recoveries_total", **t, kind="failover", outcome="failed") == 1
    assert value(got, "dbops_failover_recoveries_total", **t, kind="failover", outcome="ok") == 0
    assert value(got, "dbops_failover_last_recovery_duration_seconds", **t) == 2.5
    assert value(got, "dbops_failover_last_recovery_timestamp_seconds", **t) == 900.0
    assert value(got, "dbops_failover_auto_enabled", **t) == 1
    assert value(got, "dbops_failover_blocked", **t) == 0
    assert value(got, "dbops_failover_recovering", **t) == 0
    none_yet = samples(families([status("f", "failover", replace(d, last_report=None, recoveries=()))], {}))
    assert value(none_yet, "dbops_failover_last_recovery_duration_seconds", task="f", cluster="c1") is None
    assert value(none_yet, "dbops_failover_recoveries_total", task="f", cluster="c1",
                 kind="failover", outcome="ok") == 0


def test_backup_series():
    got = samples(families([status("b1", "backup", backup())], {"b1": "c1"}, now=1000.0))
    t = {"task": "b1", "cluster": "c1"}
    assert value(got, "dbops_backup_connected", **t) == 1
    assert value(got, "dbops_backup_checkpoint_age_seconds", **t) == 0.75
    assert value(got, "dbops_backup_checkpoint_timestamp_seconds", **t) == 950.0
    assert value(got, "dbops_backup_segments", **t) == 5
    assert value(got, "dbops_backup_segment_bytes", **t) == 5000
    assert value(got, "dbops_backup_snapshots", **t) == 1
    assert value(got, "dbops_backup_snapshot_bytes", **t) == 10
    assert value(got, "dbops_backup_last_snapshot_age_seconds", **t) == 100.0
    assert value(got, "dbops_backup_transactions_total", **t) == 17
    none = samples(families([status("b1", "backup", replace(backup(snapshots=()), lag_seconds=None))], {}))
    assert value(none, "dbops_backup_last_snapshot_age_seconds", task="b1", cluster="") is None
    assert value(none, "dbops_backup_checkpoint_age_seconds", task="b1", cluster="") is None


# ---- names, docs -------------------------------------------------------------------------


def test_names_follow_the_conventions():
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for m in METRICS:
        assert re.fullmatch(r"dbops_[a-z_]+", m.name), m.name
        assert m.name.endswith("_total") == (m.type == COUNTER), m.name
        assert not m.name.endswith(("_lag", "_age", "_duration", "_size", "_time")), \
            f"{m.name}: the unit belongs in the name"


def test_docs_list_every_metric():
    doc = (ROOT / "docs" / "api.md").read_text()
    section = doc.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(dbops_[a-z_]+)`", section))
    declared = {m.name for m in METRICS}
    assert declared - documented == set(), "not in docs/api.md"
    assert documented - declared == set(), "documented but not declared"
    for m in METRICS:
        row = next(ln for ln in section.splitlines() if ln.startswith(f"| `{m.name}`"))
        assert f"| {m.type} |" in row and f"| {m.unit} |" in row, row
        for label in m.labels:
            assert label in row, (m.name, label)


# ---- the collector over a real engine ------------------------------------------------------


@pytest.fixture
def engine(tmp_path):
    (tmp_path / "pw").write_text("x\n")
    p = tmp_path / "c.toml"
    p.write_text(f'state_dir = "{tmp_path / "state"}"\n[clusters.c1.hosts.db1]\nhost = "127.0.0.1"\n'
                 f'port = 1\nuser = "ops"\npassword_file = "{tmp_path / "pw"}"\n')
    return Engine(load_config(p))


def test_the_registry_reads_the_engine_at_each_scrape(engine):
    registry = registry_for(engine)
    assert b"dbops_task_state" not in render(registry)[0]
    mon = engine.add_task(MonitorTask(engine.config.cluster("c1")))
    body, ctype = render(registry)
    assert ctype.startswith("text/plain; version=0.0.4")
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    got = {(s.name, frozenset(s.labels.items())): s.value for f in fams.values() for s in f.samples}
    assert got[("dbops_task_state", frozenset({"task": "monitor:c1", "kind": "monitor",
                                               "cluster": "c1", "state": "new"}.items()))] == 1
    assert "process_cpu_seconds" in fams  # the process's own
    om, om_type = render(registry, "application/openmetrics-text; version=1.0.0")
    assert om_type.startswith("application/openmetrics-text") and om.endswith(b"# EOF\n")
    engine.remove_task(mon.task_id, wait=5)
    assert b'task="monitor:c1"' not in render(registry)[0]  # gone at once: nothing stale


def test_a_broken_snapshot_is_counted_and_does_not_fail_the_scrape(engine):
    engine.add_task(MonitorTask(engine.config.cluster("c1")))
    broken = engine.add_task(MonitorTask(replace(engine.config.cluster("c1"), name="c2")))
    broken.detail = lambda: 1 / 0
    collector = EngineCollector(engine)
    for n in (1, 2):
        got = samples(collector.collect())
        assert value(got, "dbops_metrics_collect_errors_total") == n
        assert value(got, "dbops_task_state", task="monitor:c1", kind="monitor", cluster="c1",
                     state="new") == 1
        assert not [k for k in got if ("task", "monitor:c2") in k[1]]


def test_tasks_take_their_declared_cluster(tmp_path):
    cfg = parse_config({"state_dir": str(tmp_path / "s"), "clusters": {
        "c1": {"hosts": {"a": {"host": "h", "port": 1, "user": "u", "password": "p"}}}}})
    collector = EngineCollector(Engine(cfg))
    assert collector._clusters() == {}
    collector.engine.config = replace(cfg, tasks={"r": TaskConfig("r", "relay", None, False, None),
                                                  "s": TaskConfig("s", "relay", "c9", False, None)})
    assert collector._clusters() == {"r": "c1", "s": "c9"}  # one cluster: the default


# ---- the engine's additions ------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the "boom"
def test_failover_task_counts_its_recoveries(engine, monkeypatch):
    task = FailoverTask(engine.config.cluster("c1"), engine.state.root)
    outcomes = iter(["ok", "failed"])

    class Rec:
        detection_ms = None

        def run(self):
            o = next(outcomes, None)
            if o is None:
                raise RuntimeError("boom")
            return RecoveryReport("switchover", "c1", False, "a", "b", o, (), total_ms=10.0)

    monkeypatch.setattr(task, "_make", lambda *a, **k: Rec())
    for _ in range(3):
        task._start_recovery("switchover", None, actor="operator")
        task._rthread.join(10)
    assert task.detail().recoveries == (("switchover", "failed", 2), ("switchover", "ok", 1))


def test_every_throttle_reason_has_a_kind():
    base = dict(max_lag_millis=1000, max_load={"Threads_running": 10.0},
                critical_load={"Threads_connected": 100.0})
    cases = {
        "critical-load": Observation(status={"Threads_connected": 200.0}),
        "manual": Observation(manual=True),
        "flag-file": Observation(flag_file_exists=True),
        "replica-lag": Observation(replica_lags={"r": 5.0}),
        "max-load": Observation(status={"Threads_running": 50.0}),
        "throttle-query": Observation(throttle_query_value=1),
    }
    for kind, obs in cases.items():
        assert reason_kind(decide(obs, **base).reason) == kind
    assert reason_kind(decide(Observation(replica_lags={"r": None}), **base).reason) == "replica-lag"
    assert reason_kind(decide(Observation(throttle_query_error="x"), **base).reason) == "throttle-query"
    assert reason_kind("hibernating after critical load") == "hibernating"
    assert reason_kind("") == "" and reason_kind("something new") == "other"
    assert set(THROTTLE_REASONS) >= {*cases, "hibernating", "other"}


# ---- --metrics-listen ----------------------------------------------------------------------


def test_parse_host_port():
    assert parse_host_port("127.0.0.1:9108", "--x") == ("127.0.0.1", 9108)
    assert parse_host_port("[::1]:9108", "--x") == ("::1", 9108)
    assert parse_host_port("localhost:1", "--x") == ("localhost", 1)
    for bad in ("9108", ":9108", "h:", "h:0", "h:65536", "h:x", ""):
        with pytest.raises(UserError, match=r"^--x .*give HOST:PORT"):
            parse_host_port(bad, "--x")



class _Conn:
    """Just enough of a pymysql connection for ``binlog_total_bytes``."""

    def __init__(self, rows=None, error=None):
        self.rows, self.error = rows, error

    def cursor(self, *_):
        conn = self

        class Cur:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def execute(self, sql, args=None):
                assert sql == "SHOW BINARY LOGS"
                if conn.error:
                    raise conn.error

            def fetchall(self):
                return conn.rows

        return Cur()


def test_binlog_total_bytes():
    rows = [{"Log_name": "b.000001", "File_size": 1000}, {"Log_name": "b.000002", "File_size": 234}]
    assert binlog_total_bytes(_Conn(rows)) == 1234
    refused = pymysql.err.OperationalError(1227, "Access denied; you need BINLOG MONITOR")
    assert binlog_total_bytes(_Conn(error=refused)) is None  # unknown, the host not down
    with pytest.raises(pymysql.err.OperationalError):  # a lost connection is the probe's to report
        binlog_total_bytes(_Conn(error=pymysql.err.OperationalError(2013, "Lost connection")))
