"""Fixed tasks of every kind for snapshot and Pilot tests (rendering only:
no server, no clock).  Each answers ``status()`` with a fixed snapshot and
records the commands it is sent."""

from dataclasses import replace

from console.engine.backup.status import BackupStatus
from console.engine.failover.model import Candidate, RecoveryReport, StepRecord, Verdict
from console.engine.failover.task import FailoverDetail
from console.engine.migration.status import MigrationDetail
from console.engine.relay.status import RelayStatus
from console.engine.task import Task, TaskStatus

T0 = 1_700_000_000.0  # fixed timestamps: rendered as times of day only where the test sets TZ


class FixedTask(Task):
    def __init__(self, task_id, kind, detail, *, state="running", phase="", summary="",
                 throttle="", error="", target=""):
        super().__init__(task_id)
        self.kind = kind
        self.fixed = dict(state=state, phase=phase, summary=summary, throttle=throttle, error=error)
        self.fixed_detail = detail
        self.sent: list[tuple[str, dict]] = []
        self.target = target

    def run(self):
        pass

    @property
    def state(self):
        return self.fixed["state"]

    def detail(self):
        return self.fixed_detail

    def confirm_target(self):
        return self.target or self.task_id

    def status(self):
        f = self.fixed
        return TaskStatus(task_id=self.task_id, kind=self.kind, state=f["state"], phase=f["phase"],
                          since=T0, last_error=f["error"], throttle_reason=f["throttle"],
                          summary=f["summary"], detail=self.fixed_detail)

    def commands(self):
        out = {}
        for name in ("pause", "resume", "stop", "throttle", "no-throttle", "set", "cut-over", "panic",
                     "switch-master", "purge", "snapshot-now", "verify", "restore", "switchover",
                     "failover", "plan", "acknowledge", "auto"):
            out[name] = (self._recorder(name), False, "")
        return out

    def _recorder(self, name):
        def record(actor="operator", **args):
            self.sent.append((name, args))
            if name == "auto":
                self.fixed_detail = replace(self.fixed_detail, auto=bool(args.get("on")))
            if name == "restore":
                return (f"restored into {args.get('target_dir')}: server running on 127.0.0.1:"
                        f"{args.get('port')} (mariadb -h 127.0.0.1 -P {args.get('port')} -u root)")
            return f"{name}: ok"
        return record


def relay_task(state="running"):
    d = RelayStatus(upstream="db1 127.0.0.1:3306", upstream_identity="server_id 1", connected=state == "running",
                    upstream_file="mysql-bin.000003", upstream_pos=4711, upstream_gtid="0-1-1234",
                    received_file="mysql-bin.000003", received_pos=4600, relayed_subdir="0001",
                    relayed_file="mysql-bin.000003", relayed_pos=4600, relayed_gtid="0-1-1233",
                    bytes_behind=111, seconds_behind=0.2, events_per_s=182.0, mb_per_s=0.35,
                    total_events=91_000, total_bytes=12_345_678, retries=0, last_error="",
                    relay_dir="/var/lib/dbops/relay", relay_bytes=12_345_678, relay_files=3,
                    upstream_retention="binlogs expire after 7 days", caught_up=False,
                    mb_history=(0.1, 0.2, 0.35, 0.3, 0.0, 0.4, 0.35), upstream_address="127.0.0.1:3306",
                    upstream_polled_at=T0, upstream_age=0.4)
    return FixedTask("relay-a", "relay", d, state=state, phase="streaming", summary="0-1-1233, 111 B behind")


def migration_task(state="running", phase="copying"):
    d = MigrationDetail(database="shop", table="orders", ghost="_orders_gho", alter="ADD COLUMN note TEXT",
                        execute=True, unique_key="PRIMARY", rows_estimate=1_200_000, rows_copied=480_000,
                        percent=40.0, copy_rate=12_000.0, apply_rate=85.0, events_applied=51_000,
                        backlog_bytes=2_048, eta_seconds=60.0, heartbeat_lag=0.003,
                        replica_lags=(("db2", 0.002), ("db3", 0.0)),
                        binlog_coordinates="mysql-bin.000003:4711", applied_pos="0-1-1234",
                        chunk_size=1000, dml_batch_size=10, nice_ratio=0.0, max_lag_millis=1500,
                        copy_rate_history=(11_000.0, 12_500.0, 12_000.0, 0.0, 12_100.0),
                        apply_rate_history=(80.0, 90.0, 85.0, 0.0, 85.0))
    return FixedTask("mig-orders", "migration", d, state=state, phase=phase, summary="40.0%, ETA 1m00s",
                     target="orders")


def backup_task():
    d = BackupStatus(source="db2 127.0.0.1:3307", connected=True, storage="/var/lib/dbops/backup",
                     checkpoint_gtid="0-1-1230", checkpoint_time=0.0, checkpoint_seq=17,
                     source_gtid="0-1-1234", lag_seconds=0.4, caught_up=False, segments=17,
                     segment_bytes=3_400_000, snapshot_bytes=52_000_000,
                     snapshots=(("snap-0001", "logical", 0.0, 52_000_000, "0-1-1000"),),
                     source_oldest_binlog="mysql-bin.000001", source_retention="binlogs expire after 7 days")
    return FixedTask("backup-a", "backup", d, phase="streaming", summary="checkpoint 0-1-1230")


def failover_task(topology):
    cands = (Candidate("db2", "127.0.0.1:3307", True, ("same dc", "lag 0 s"), 1234, "0-1-1234", rank=1),
             Candidate("db3", "127.0.0.1:3308", True, ("lag 2.5 s",), 1200, "0-1-1200", rank=2),
             Candidate("db4", "127.0.0.1:3309", False, ("unreachable",), 0, "", rank=0))
    report = RecoveryReport("switchover", "prod", False, "127.0.0.1:3307", "127.0.0.1:3306", "ok",
                            (StepRecord("fence", "127.0.0.1:3307", ms=12.0, outcome="ok"),
                             StepRecord("promote", "127.0.0.1:3306", ms=30.0, outcome="ok")),
                            write_block_ms=42.0, started=0.0)
    d = FailoverDetail(cluster="prod", topology=topology,
                       verdict=Verdict("healthy", "127.0.0.1:3306", "primary answers"), candidates=cands,
                       auto=False, recovering="", steps=report.steps, last_report=report, blocked="",
                       interval=1.0)
    return FixedTask("failover:prod", "failover", d, phase="watching", summary="healthy", target="prod")


def add_all(engine, topology):
    for t in (relay_task(), migration_task(), backup_task(), failover_task(topology)):
        engine.add_task(t)
    return engine
