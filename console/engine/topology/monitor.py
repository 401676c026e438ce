"""Monitor task: rediscovers a cluster's topology at the configured interval,
keeps a lag history per replica, optionally writes the heartbeat on the
primary (like pt-heartbeat), and reports changes to the event feed."""

from __future__ import annotations

import collections
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from console.config import ClusterConfig
from console.engine.task import Task
from console.engine.topology.discovery import ConnPool, discover
from console.engine.topology.model import Topology
from console.mysql.connection import DBError, Endpoint, connect, describe_error
from console.mysql.probe import ensure_heartbeat_table, write_heartbeat

HISTORY = 120


@dataclass(frozen=True)
class MonitorDetail:
    cluster: str
    topology: Topology | None
    lag_history: tuple[tuple[str, tuple[float, ...]], ...]
    interval: float
    rounds: int
    heartbeat: bool

    def history(self, address: str) -> tuple[float, ...]:
        return dict(self.lag_history).get(address, ())


PROBE_THREADS = 32  # host probes in flight at once, over every monitor of the process
_probes: ThreadPoolExecutor | None = None
_probes_lock = threading.Lock()


def shared_probes() -> ThreadPoolExecutor:
    """The process's one pool of probe threads: a fleet of N clusters uses
    at most ``PROBE_THREADS`` threads for its probes (plus one loop thread a
    monitor), not 8 a cluster.  Probes never wait on other probes, so
    monitors sharing it cannot deadlock."""
    global _probes
    with _probes_lock:
        if _probes is None:
            _probes = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="probe")
        return _probes


def monitor_id(cluster: str) -> str:
    return f"monitor:{cluster}"


class MonitorTask(Task):
    kind = "monitor"

    def __init__(self, cluster: ClusterConfig, interval: float = 1.0):
        super().__init__(monitor_id(cluster.name))
        self.cluster = cluster
        self.interval = interval
        self.pool = ConnPool(connect_timeout=min(1.0, max(0.3, interval)), read_timeout=max(2.0, interval * 3))
        self._topology: Topology | None = None
        self._history: dict[str, collections.deque] = {}
        self._rounds = 0
        self._changed = threading.Event()
        # one discovery round at a time: a pooled connection is never used by
        # two threads at once (pymysql connections are not thread-safe)
        self._refresh_lock = threading.Lock()
        self._history_lock = threading.Lock()  # refresh() appends, detail() copies
        self._refresh_error = ""
        self._hb_thread: threading.Thread | None = None
        self._executor = shared_probes()

    # ---- interval is an operator setting -------------------------------------
    def set_interval(self, seconds: float) -> None:
        if seconds < 0.1:
            raise ValueError("interval must be at least 0.1 s")
        self.interval = seconds

    def command_interval(self, seconds: float, actor: str = "operator") -> float:
        self.set_interval(float(seconds))
        return self.interval

    def commands(self):
        c = super().commands()
        c["interval"] = (self.command_interval, False, "set the refresh interval in seconds")
        c["refresh"] = (self.command_refresh, False, "probe the cluster now")
        return c

    def command_refresh(self, actor: str = "operator") -> str:
        t = self.refresh()
        return f"probed {len(t.hosts)} host(s)"

    # ---- loop --------------------------------------------------------------
    def run(self) -> None:
        self.set_phase("discovering")
        if self.cluster.heartbeat:
            self._hb_thread = threading.Thread(target=self._heartbeat_loop, daemon=True,
                                               name=f"heartbeat-{self.cluster.name}")
            self._hb_thread.start()
        while True:
            self.checkpoint()
            t0 = time.monotonic()
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - one failed round must not end the monitor
                self._round_failed(e)
            self.set_phase("watching")
            self.sleep(max(0.05, self.interval - (time.monotonic() - t0)))

    def refresh(self) -> Topology:
        """One discovery round; the task's loop and manual refreshes (the
        console's ``r``) share it.  Rounds never overlap: a caller that comes
        while one runs waits for it and takes its result."""
        done = self._rounds
        with self._refresh_lock:
            if self._rounds != done and self._topology is not None:
                return self._topology  # a round finished while we waited: coalesce into it
            try:
                topo = self._refresh_locked()
            except Exception:
                self.pool.close()  # a connection may be out of step: the next round starts fresh
                raise
        if self._refresh_error:
            self._refresh_error = ""
            self.set_error("")
            if self.engine:
                self.engine.event(self.task_id, "topology refresh works again", "info")
        return topo

    def _refresh_locked(self) -> Topology:
        prev = self._topology
        sid = None
        if self.cluster.heartbeat and prev and prev.primary:
            sid = prev.primary.server_id
        topo = discover(self.cluster, self.pool, previous=prev, heartbeat_sid=sid,
                        executor=self._executor, binlog_sizes=True)
        now = time.time()
        with self._history_lock:
            for h in topo.hosts:
                if h.role in ("replica", "intermediate"):
                    lag = h.heartbeat_lag if h.heartbeat_lag is not None else h.seconds_behind
                    dq = self._history.setdefault(h.address, collections.deque(maxlen=HISTORY))
                    dq.append(float(lag) if lag is not None and h.reachable else float("nan"))
        self._report_changes(prev, topo)
        self._topology = topo
        self._rounds += 1
        self._last = now
        self._changed.set()
        return topo

    def _round_failed(self, e: Exception) -> None:
        """Say so once (status, event log, errors.log) and carry on: the next
        round runs on fresh connections; the heartbeat keeps its own."""
        msg = f"topology refresh failed: {describe_error(e)}"
        self.set_error(msg)
        if msg != self._refresh_error:
            self._refresh_error = msg
            if self.engine:
                self.engine.event(self.task_id, msg, "error")
                self.engine.log_exception(self.task_id, traceback.format_exc())

    def _report_changes(self, prev: Topology | None, topo: Topology) -> None:
        if not self.engine:
            return
        old = {h.address: h for h in prev.hosts} if prev else {}
        for h in topo.hosts:
            o = old.get(h.address)
            if o is None:
                self.engine.event(self.task_id, f"found {h.name} ({h.address}) as {h.role}"
                                  + ("" if h.reachable else f", {h.down_word}: {h.error}"),
                                  "info" if h.reachable else "warning")
                continue
            if (o.reachable or o.access_denied != h.access_denied) and not h.reachable:
                what = "refuses our login" if h.access_denied else "became unreachable"
                self.engine.event(self.task_id, f"{h.name} {what}: {h.error}", "error")
            elif not o.reachable and h.reachable:
                self.engine.event(self.task_id, f"{h.name} is reachable again", "info")
            if o.role != h.role and h.reachable:
                self.engine.event(self.task_id, f"{h.name} is now {h.role} (was {o.role})", "warning")
            if h.replication_error and h.replication_error != o.replication_error:
                self.engine.event(self.task_id, f"{h.name} replication error: {h.replication_error}", "error")

    def _heartbeat_loop(self) -> None:
        conn = None
        target = ""
        ensured = False
        while not self.stopping:
            topo = self._topology
            prim = topo.primary if topo else None
            try:
                if prim is None or not prim.reachable:
                    raise DBError("no single reachable primary")
                if conn is None or target != prim.address:
                    if conn:
                        conn.close()
                    host, _, port = prim.address.rpartition(":")
                    h0 = self.cluster.hosts[0]
                    ep = Endpoint(host, int(port), h0.user, h0.password, prim.name)
                    conn = connect(ep, connect_timeout=1.0, read_timeout=2.0, write_timeout=2.0)
                    target, ensured = prim.address, False
                if not ensured:
                    ensure_heartbeat_table(conn)
                    ensured = True
                write_heartbeat(conn)
            except Exception:  # noqa: BLE001 - heartbeat is best effort; the probe reports errors
                if conn:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass
                conn = None
            self._stop.wait(self.cluster.heartbeat_interval)
        if conn:
            conn.close()

    def wait_round(self, timeout: float = 10.0) -> Topology | None:
        """Block until the next refresh completes (tests, headless status)."""
        self._changed.clear()
        self._changed.wait(timeout)
        return self._topology

    @property
    def topology(self) -> Topology | None:
        return self._topology

    def cleanup(self) -> None:
        self.pool.close()

    def detail(self) -> MonitorDetail:
        with self._history_lock:
            history = tuple((a, tuple(d)) for a, d in self._history.items())
        return MonitorDetail(
            cluster=self.cluster.name, topology=self._topology,
            lag_history=history,
            interval=self.interval, rounds=self._rounds, heartbeat=self.cluster.heartbeat,
        )

    def summary(self) -> str:
        t = self._topology
        if not t:
            return "discovering"
        up = sum(1 for h in t.hosts if h.reachable)
        denied = sum(1 for h in t.hosts if h.access_denied)
        return (f"{len(t.hosts)} hosts, {up} reachable" + (f", {denied} refuse our login" if denied else "")
                + (f", {len(t.problems)} problem(s)" if t.problems else ""))


FLEET_THREADS = 16  # clusters probed at once by a headless status of a fleet


def one_shot_all(clusters: list[ClusterConfig], timeout: float = 2.0) -> list[Topology]:
    """Every cluster discovered once, several at a time (bounded threads;
    each cluster's own connections): a fleet's status in about the time of
    its slowest cluster instead of the sum of all."""
    if len(clusters) <= 1:
        return [one_shot(c, timeout) for c in clusters]
    with ThreadPoolExecutor(max_workers=min(FLEET_THREADS, len(clusters)),
                            thread_name_prefix="fleet") as ex:
        return list(ex.map(lambda c: one_shot(c, timeout), clusters))


def one_shot(cluster: ClusterConfig, timeout: float = 2.0) -> Topology:
    """Discover once without a running task (headless ``status``)."""
    pool = ConnPool(connect_timeout=min(2.0, timeout), read_timeout=max(2.0, timeout))
    try:
        topo = discover(cluster, pool, binlog_sizes=True, executor=shared_probes())
        if cluster.heartbeat and topo.primary:
            topo = discover(cluster, pool, previous=topo, heartbeat_sid=topo.primary.server_id,
                            binlog_sizes=True, executor=shared_probes())
        return topo
    finally:
        pool.close()
