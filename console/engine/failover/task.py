"""The failover task: watches one cluster (detection + live ranking), runs
switchovers and failovers on operator command, and -- only when the cluster
opted in -- fails over automatically, with anti-flapping.

Commands: ``switchover [to]`` and ``failover [to]`` (dangerous: confirm by
typing the cluster name), ``plan`` (dry run of either), ``acknowledge``
(lifts the anti-flapping block), ``auto on|off``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from console.config import ClusterConfig
from console.engine.failover import history
from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.detection import ADVICE, advise, assess, find_primary, replica_settings
from console.engine.failover.emergency import Failover
from console.engine.failover.model import Candidate, RecoveryReport, StepRecord, Verdict
from console.engine.failover.ranking import EMERGENCY, PLANNED, rank
from console.engine.failover.relay_follow import relay_follower
from console.engine.failover.salvage_relay import relay_dirs, relay_sources, survivor_positions
from console.engine.failover.switchover import Switchover
from console.engine.task import Task, command
from console.engine.topology.discovery import ConnPool, discover
from console.engine.topology.model import Topology
from console.errors import CommandError
from console.kinds.failover import FailoverOptions
from console.mysql.connection import Endpoint


@dataclass(frozen=True)
class FailoverDetail:
    cluster: str
    topology: Topology | None
    verdict: Verdict | None
    candidates: tuple[Candidate, ...]
    auto: bool
    recovering: str  # "" | switchover | failover
    steps: tuple[StepRecord, ...]  # live steps of the running (or last) recovery
    last_report: RecoveryReport | None
    blocked: str  # why an automatic recovery is blocked ("" if not)
    interval: float
    advice: tuple[str, ...] = ()  # replica settings that slow detection down, per replica
    general_advice: str = ADVICE
    # (kind, outcome, count) of the recoveries this task ran (dry runs not
    # counted) since it started; a recovery that raised counts as failed
    recoveries: tuple[tuple[str, str, int], ...] = ()
    # operator flags (topology actions): automatic recovery switch, and
    # (address, until, reason) of every downtimed host
    recovery_enabled: bool = True
    downtime: tuple[tuple[str, float, str], ...] = ()


ADVICE_EVERY = 300  # rounds between re-reading the replicas' detection settings
FAST_RECHECK_FOR = 5.0  # seconds of 0.1 s re-checks after the primary became unreachable


def task_id_for(cluster: str) -> str:
    return f"failover:{cluster}"


class FailoverTask(Task):
    kind = "failover"

    def __init__(self, cluster: ClusterConfig, state_dir, options: FailoverOptions | None = None,
                 *, task_id: str | None = None, auto: bool | None = None,
                 relay_follow: Callable[[str, str], list[str]] | None = None):
        super().__init__(task_id or task_id_for(cluster.name))
        # who switches the cluster's relays after a recovery: the engine's own
        # relay tasks by default; a ``monitor`` beside a serving engine passes
        # a follower that switches that engine's relays through its API
        self.relay_follow = relay_follow
        self.cluster = cluster
        self.state_dir = state_dir
        self.opts = options or FailoverOptions()
        self.auto = cluster.auto_failover if auto is None else auto
        self.interval = cluster.check_interval
        self._pool = ConnPool(connect_timeout=min(1.0, self.interval), read_timeout=max(2.0, self.interval * 3))
        self._topo: Topology | None = None
        self._healthy: Topology | None = None  # last snapshot with a reachable primary
        self._verdict: Verdict | None = None
        self._cands: tuple[Candidate, ...] = ()
        self._recovering = ""
        self._steps: tuple[StepRecord, ...] = ()
        self._last: RecoveryReport | None = None
        self._recoveries: dict[tuple[str, str], int] = {}
        self._blocked = ""
        self._dead_rounds = 0
        self._rthread: threading.Thread | None = None
        self.dead_since: float | None = None  # monotonic time the primary was first seen dead
        self.dead_seen_at: float | None = None  # wall clock start of the last dead episode
        self._unreach_since: float | None = None
        self._trouble_since: float | None = None  # first check that found the primary not healthy
        self._advice: tuple[str, ...] = ()
        self._advised_round = -1
        self._rounds = 0
        self._auto_halted = ""  # an automatic failover failed: no automatic retry

    def confirm_target(self) -> str:
        return self.cluster.name

    def login_endpoints(self) -> tuple[Endpoint, ...]:
        """Every host of the cluster with its account: a refused login is a
        config error (the watch would show that host as down, and a recovery
        needs every host), refused at start."""
        return tuple(Endpoint.from_host(h) for h in self.cluster.hosts)

    # ---- loop ------------------------------------------------------------------
    def run(self) -> None:
        self.set_phase("watching")
        while True:
            self.checkpoint()
            t0 = time.monotonic()
            try:
                self.check_once()
            except Exception as e:  # noqa: BLE001 - one bad round must not end the watch
                self.set_error(f"check failed: {e}")
            self.sleep(max(0.05, self._next_wait() - (time.monotonic() - t0)))

    def _next_wait(self) -> float:
        """The check interval, except just after the primary became unreachable:
        then re-check every 0.1 s for a few seconds, so the replicas' confirmation
        (their IO threads noticing) is seen as soon as it happens."""
        v = self._verdict
        if v is not None and v.state == "primary-unreachable" and self._unreach_since is not None \
                and time.monotonic() - self._unreach_since < FAST_RECHECK_FOR:
            return min(self.interval, 0.1)
        return self.interval

    def check_once(self) -> Verdict:
        topo = discover(self.cluster, self._pool, previous=self._topo)
        self._rounds += 1
        v = assess(topo, self._healthy)
        primary = find_primary(topo, self._healthy)
        if v.state == "healthy":
            self._healthy = topo
            self._auto_halted = self._blocked = ""
            if self._advised_round < 0 or self._rounds - self._advised_round >= ADVICE_EVERY:
                self._advice = self._collect_advice(topo)
                self._advised_round = self._rounds
            self._dead_rounds = 0
            self.dead_since = None
        replicas = [h for h in topo.hosts if primary is not None and h.upstream == primary.address]
        last = self._healthy.host(primary.address) if (self._healthy and primary) else primary
        rules = ClusterOps(self.cluster, self.state_dir).rules(self._rec_opts())
        if v.state == "healthy":
            self._cands = rank(last, replicas, rules, PLANNED)
        else:  # what the cluster's relay tasks hold counts (salvage gives it to the candidate)
            flavors = {h.flavor for h in replicas}
            surv = self._survivors() if flavors <= {"mariadb"} else {}
            self._cands = rank(last, replicas, rules, EMERGENCY, surv)
        changed = self._verdict is None or self._verdict.state != v.state
        if v.state == "primary-unreachable":
            if self._unreach_since is None:
                self._unreach_since = time.monotonic()
        else:
            self._unreach_since = None
        if v.state == "healthy":
            self._trouble_since = None
        elif self._trouble_since is None:
            self._trouble_since = time.monotonic()
        self._topo, self._verdict = topo, v
        if changed and self.engine:
            level = {"healthy": "info", "dead": "error"}.get(v.state, "warning")
            self.engine.event(self.task_id, f"{self.cluster.name}: {v.state}: {v.reason}", level)
        if v.dead:
            self._dead_rounds += 1
            if self.dead_since is None:
                self.dead_since = time.monotonic()
                self.dead_seen_at = time.time()
            if self.auto and not self._recovering and self._dead_rounds >= self.opts.confirm_rounds:
                self._auto_failover()
        self.set_phase("recovering" if self._recovering else
                       ("primary dead" if v.dead else "watching"))
        return v

    def _collect_advice(self, topo: Topology) -> tuple[str, ...]:
        out: list[str] = []
        for h in topo.hosts:
            if not (h.reachable and h.channels):
                continue
            try:
                conn, dialect = self._pool.get(ClusterOps(self.cluster).endpoint(h.address))
                out += advise(h.name, *replica_settings(conn, dialect))
            except Exception:  # noqa: BLE001 - advice is best effort
                continue
        return tuple(out)

    def _auto_failover(self) -> None:
        if self._auto_halted:
            self._blocked = self._auto_halted
            return
        why = self._operator_hold()
        if why:
            if why != self._blocked and self.engine:
                self.engine.event(self.task_id, why, "warning")
            self._blocked = why
            return
        blocking = history.blocking(history.load_local(self.state_dir, self.cluster.name),
                                    self.cluster.block_period,
                                    acked_at=history.acknowledged_at(self.state_dir, self.cluster.name))
        if blocking:
            msg = (f"automatic failover blocked: {blocking.kind} at "
                   f"{time.strftime('%H:%M:%S', time.localtime(blocking.at))} not acknowledged")
            if msg != self._blocked and self.engine:
                self.engine.event(self.task_id, msg, "warning")
            self._blocked = msg
            return
        self._blocked = ""
        self._start_recovery("failover", None, actor="auto")

    def _operator_hold(self) -> str:
        """Why the operator's flags (``topology recovery off``, ``topology
        downtime`` of the primary) keep automatic failover away ("" if not)."""
        from console.engine.topology.actions import flags

        if not flags.recovery_enabled(self.state_dir, self.cluster.name):
            return f"automatic failover blocked: recovery of {self.cluster.name} is off (topology recovery)"
        v = self._verdict
        primary = v.primary if v is not None else ""
        dt = flags.downtimes(self.state_dir, self.cluster.name)
        if primary and primary in dt:
            until = time.strftime("%H:%M:%S", time.localtime(float(dt[primary]["until"])))
            return f"automatic failover blocked: the primary {primary} is downtimed until {until}"
        return ""

    # ---- recoveries ---------------------------------------------------------------
    def _rec_opts(self, **kw) -> RecoveryOptions:
        return RecoveryOptions(prefer=frozenset(self.opts.prefer), must_not=frozenset(self.opts.must_not),
                               wait_timeout=self.opts.wait_timeout, relay_wait=self.opts.relay_wait,
                               max_trx_seconds=self.opts.max_trx_seconds, **kw)

    def _make(self, kind: str, to: str | None, actor: str, dry_run: bool, force: bool = False):
        # the engine's coordinator: with etcd, the fleet's failover lease too
        ops = ClusterOps(self.cluster, self.state_dir,
                         coordinator=self.engine.coordinator if self.engine else None)
        opts = self._rec_opts(to=to or None, actor=actor, dry_run=dry_run, force=force,
                              relay_dirs=self._relay_dirs())
        follow = self.relay_follow or (relay_follower(self.engine) if self.engine else None)
        cls = Switchover if kind == "switchover" else Failover
        return cls(ops, opts, on_steps=self._on_steps if not dry_run else None,
                   relay_follow=follow, previous=self._healthy,
                   snapshot=self._topo if kind == "failover" else None)

    def _relay_dirs(self) -> tuple[tuple[str, str], ...]:
        """The cluster's relay tasks (running in the engine or declared in the
        config): failover salvages from their directories."""
        if self.engine is None:
            return ()
        return relay_dirs(self.engine.config, self.cluster.name, self.engine)

    def _survivors(self) -> dict:
        return survivor_positions(relay_sources(self._relay_dirs()))  # best effort: live ranking

    def _on_steps(self, steps: tuple[StepRecord, ...]) -> None:
        self._steps = steps

    def _start_recovery(self, kind: str, to: str | None, actor: str, force: bool = False) -> str:
        with self._lock:
            if self._recovering:
                raise CommandError(f"a {self._recovering} of {self.cluster.name} is running")
            self._recovering = kind
            self._steps = ()
        rec = self._make(kind, to, actor, False, force)
        if self.dead_since is not None and self._trouble_since is not None and kind == "failover":
            # from the first check that found the primary unreachable to "dead"
            rec.detection_ms = (self.dead_since - self._trouble_since) * 1000

        def body():
            outcome = "failed"  # what counts when run() raises
            try:
                rep = rec.run()
                if rep.detection_ms is None and rec.detection_ms is not None:
                    rep = replace(rep, detection_ms=rec.detection_ms)
                self._last = rep
                outcome = rep.outcome
                if actor == "auto" and rep.outcome != "ok":
                    # no retry loop: wait for the operator (or the primary's return)
                    self._auto_halted = (f"automatic failover {rep.outcome}: {rep.error}; "
                                         f"no automatic retry until acknowledged")
                if self.engine:
                    self.engine.audit(actor, kind, self.task_id, rep.outcome,
                                      f"{rep.old_primary} -> {rep.new_primary}"
                                      + (f": {rep.error}" if rep.error else "")
                                      + (f"; lost {rep.lost}" if rep.lost else ""))
            finally:
                with self._lock:
                    self._recovering = ""
                    self._recoveries[(kind, outcome)] = self._recoveries.get((kind, outcome), 0) + 1
                self._healthy = None if self._last and self._last.outcome == "ok" else self._healthy
        self._rthread = threading.Thread(target=body, name=f"{kind}-{self.cluster.name}", daemon=True)
        self._rthread.start()
        return f"{kind} of {self.cluster.name} started"

    def wait_recovery(self, timeout: float = 60.0) -> RecoveryReport | None:
        t = self._rthread
        if t:
            t.join(timeout)
        return self._last

    @command("switchover", dangerous=True, help="planned switchover to a replica (best if none given)")
    def switchover(self, to: str = "", actor: str = "operator") -> str:
        return self._start_recovery("switchover", to, actor)

    @command("failover", dangerous=True, help="emergency failover of a dead primary")
    def failover(self, to: str = "", force: bool = False, actor: str = "operator") -> str:
        return self._start_recovery("failover", to, actor, force)

    @command("plan", help="dry run: the exact steps a switchover or failover would take")
    def plan(self, kind: str = "switchover", to: str = "", actor: str = "operator") -> RecoveryReport:
        if kind not in ("switchover", "failover"):
            raise CommandError(f"plan: kind must be switchover or failover, got {kind!r}")
        return self._make(kind, to, actor, True).run()

    @command("acknowledge", help="acknowledge the last recovery (lifts the anti-flapping block)")
    def acknowledge(self, actor: str = "operator") -> str:
        n = history.acknowledge_local(self.state_dir, self.cluster.name, by=actor)
        topo = self._topo
        if topo and topo.primary and topo.primary.reachable:
            ops = ClusterOps(self.cluster, self.state_dir)
            try:
                n = max(n, history.acknowledge_remote(ops.conn(topo.primary.address), self.cluster.name))
            finally:
                ops.close()
        self._blocked = ""
        self._auto_halted = ""
        return f"acknowledged {n} recovery(ies) of {self.cluster.name}"

    @command("auto", help="turn automatic failover on or off for this cluster")
    def set_auto(self, on: bool | str = True, actor: str = "operator") -> str:
        if isinstance(on, str):
            on = on.lower() in ("1", "on", "true", "yes")
        self.auto = bool(on)
        return f"automatic failover {'on' if self.auto else 'off'} for {self.cluster.name}"

    # ---- operator flags and history (topology actions; the console's hooks) ----------------
    @command("recovery", help="automatic recovery of this cluster on or off (kept in the state directory)")
    def set_recovery(self, on: bool | str = True, actor: str = "operator") -> str:
        from console.engine.topology.actions import flags

        if isinstance(on, str):
            on = on.lower() in ("1", "on", "true", "yes")
        flags.set_recovery(self.state_dir, self.cluster.name, bool(on), by=actor)
        return f"automatic recovery of {self.cluster.name}: {'on' if on else 'off'}"

    @command("downtime", help="no recovery acts on HOST for DURATION (e.g. 2h); duration 0 or 'end' ends it")
    def downtime(self, host: str = "", duration: str = "1h", reason: str = "", actor: str = "operator") -> str:
        from console.engine.topology.actions import flags
        from console.engine.topology.discovery import norm_address

        h = self.cluster.host(host) or next((x for x in self.cluster.hosts
                                             if norm_address(x.host, x.port) == host), None)
        if h is None:
            raise CommandError(f"downtime: no host {host!r} in cluster {self.cluster.name} "
                               f"(known: {', '.join(x.name for x in self.cluster.hosts)})")
        addr = norm_address(h.host, h.port)
        if str(duration).strip() in ("0", "end", ""):
            flags.clear_downtime(self.state_dir, self.cluster.name, addr)
            return f"downtime of {h.name} ended"
        rec = flags.set_downtime(self.state_dir, self.cluster.name, addr, flags.parse_duration(str(duration)),
                                 reason=reason, by=actor)
        return f"{h.name} downtimed until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(rec['until']))}"

    @command("history", help="every past recovery of the cluster with its steps and acknowledgement")
    def recovery_history(self, actor: str = "operator") -> list[dict]:
        from console.engine.topology.actions.history import recoveries

        return [r.to_dict() for r in recoveries(self.state_dir, self.cluster.name)]

    # ---- status ----------------------------------------------------------------------
    def cleanup(self) -> None:
        self._pool.close()

    def detail(self) -> FailoverDetail:
        from console.engine.topology.actions import flags

        with self._lock:
            recoveries = tuple((k, o, n) for (k, o), n in sorted(self._recoveries.items()))
        return FailoverDetail(
            cluster=self.cluster.name, topology=self._topo, verdict=self._verdict,
            candidates=self._cands, auto=self.auto, recovering=self._recovering,
            steps=self._steps, last_report=self._last, blocked=self._blocked,
            interval=self.interval, advice=self._advice,
            recoveries=recoveries,
            recovery_enabled=flags.recovery_enabled(self.state_dir, self.cluster.name),
            downtime=tuple((a, float(v.get("until", 0)), str(v.get("reason", "")))
                           for a, v in sorted(flags.downtimes(self.state_dir, self.cluster.name).items())),
        )

    def summary(self) -> str:
        v = self._verdict
        if self._recovering:
            return f"{self._recovering} running"
        if v is None:
            return "checking"
        auto = "auto" if self.auto else "manual"
        return f"{v.state} ({auto})" + (f"; {self._blocked}" if self._blocked else "")


def make_failover_task(engine, tc):
    cluster = engine.config.cluster(tc.cluster)
    return FailoverTask(cluster, engine.state.root, tc.options, task_id=tc.name)
