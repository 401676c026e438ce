"""The parts every recovery shares: journal, lease, hooks, history, the
relay follow-up and the final report.  ``Switchover`` and ``Failover``
subclass ``Recovery`` and implement ``_run``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from console.engine.failover import history
from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.haproxy import TrafficSwitch
from console.engine.failover.hooks import run_hooks, secret_env_names
from console.engine.failover.journal import Journal
from console.engine.failover.lease import ClusterLease
from console.engine.failover.model import Candidate, RecoveryReport, StepRecord
from console.engine.topology.discovery import norm_address
from console.engine.topology.model import Topology
from console.errors import UserError

RelayFollow = Callable[[str, str], list[str]]  # (cluster, new primary address) -> lines


class RecoveryFailed(UserError):
    exit_code = 1


def new_recovery_id() -> str:
    """``20261204T033323Z-a1b2c3``: sortable by time, unique across consoles."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class Recovery:
    kind = "recovery"

    def __init__(self, ops: ClusterOps, opts: RecoveryOptions, *,
                 on_steps: Callable[[tuple[StepRecord, ...]], None] | None = None,
                 relay_follow: RelayFollow | None = None, previous: Topology | None = None,
                 snapshot: Topology | None = None):
        self.ops, self.opts = ops, opts
        self.cluster = ops.cluster
        self.previous = previous
        self.snapshot = snapshot  # a fresh topology the caller already has (saves a discovery)
        self.relay_follow = relay_follow
        self.recovery_id = new_recovery_id()
        self.journal = Journal(None if opts.dry_run else ops.state_dir, self.kind, self.cluster.name,
                               on_steps)
        self.journal.meta["recovery_id"] = self.recovery_id
        self.lease = ClusterLease(self.cluster.name, None if opts.dry_run else ops.state_dir,
                                  None if opts.dry_run else ops.coordinator)
        self.t0 = time.monotonic()
        self.t_wall = time.time()
        self.old_primary = ""
        self.new_primary = ""
        self.candidates: tuple[Candidate, ...] = ()
        self.repointed: list[str] = []
        self.not_repointed: list[str] = []
        self.salvaged = ""
        self.salvaged_from: list[str] = []
        self.lost = ""
        self.traffic = ""  # the HAProxy switch's outcome ("" without [haproxy])
        self.write_block_ms: float | None = None
        self.promoted_ms: float | None = None
        self.repointed_ms: float | None = None
        self.detection_ms: float | None = None
        self.acted = False  # set by the first step that changes a server

    def ms(self) -> float:
        return (time.monotonic() - self.t0) * 1000

    # ---- entry ---------------------------------------------------------------
    def run(self) -> RecoveryReport:
        error = ""
        outcome = "planned" if self.opts.dry_run else "ok"
        try:
            self._run()
        except UserError as e:
            error, outcome = str(e), "failed"
        except Exception as e:  # noqa: BLE001 - the report must always be written
            error, outcome = f"{type(e).__name__}: {e}", "failed"
        finally:
            self.lease.release()
            self.ops.close()
        if outcome == "failed" and not self.acted:
            outcome = "refused"  # nothing was changed on any server
        if not self.opts.dry_run:
            self._post_hooks(outcome, error)
        report = self.report(outcome, error)
        if outcome == "refused" and not self.journal.snapshot():
            return replace(report, journal="")  # nothing was done: no journal file either
        self.journal.flush(outcome=outcome, error=error, actor=self.opts.actor, old_primary=self.old_primary,
                           new_primary=self.new_primary, lost=self.lost, salvaged=self.salvaged,
                           salvaged_from=self.salvaged_from,
                           write_block_ms=self.write_block_ms, total_ms=report.total_ms,
                           promoted_ms=self.promoted_ms, repointed=self.repointed,
                           not_repointed=self.not_repointed, traffic=self.traffic)
        return report

    def _run(self) -> None:
        raise NotImplementedError

    def first_snapshot(self) -> Topology:
        """The caller's snapshot when under 2 s old, else a new discovery; the
        recovery re-discovers under the lease anyway."""
        s = self.snapshot
        if s is not None and time.time() - s.taken_at < 2.0:
            return s
        return self.ops.discover(self.previous)

    def report(self, outcome: str, error: str) -> RecoveryReport:
        return RecoveryReport(
            kind=self.kind, cluster=self.cluster.name, dry_run=self.opts.dry_run,
            old_primary=self.old_primary, new_primary=self.new_primary, outcome=outcome,
            steps=self.journal.snapshot(), candidates=self.candidates,
            repointed=tuple(self.repointed), not_repointed=tuple(self.not_repointed),
            salvaged=self.salvaged, salvaged_from=tuple(self.salvaged_from), lost=self.lost, write_block_ms=self.write_block_ms,
            detection_ms=self.detection_ms, promoted_ms=self.promoted_ms, repointed_ms=self.repointed_ms,
            total_ms=None if self.opts.dry_run else self.ms(), error=error,
            journal=str(self.journal.path or ""), started=self.t_wall,
            recovery_id=self.recovery_id, traffic=self.traffic,
        )

    # ---- shared steps ----------------------------------------------------------
    def take_lease(self, topo: Topology) -> None:
        eps = [self.ops.endpoint(h.address) for h in topo.hosts if h.reachable]
        with self.journal.step("lease") as s:
            held = self.lease.acquire(eps)
            s.sql.append(f"SELECT GET_LOCK('{self.lease.name}', 0)")
            s.detail = f"held on {', '.join(held)}"

    def pre_hooks(self) -> None:
        paths = self.cluster.hooks.get("pre_failover", ())
        if not paths:
            return
        with self.journal.step("pre-failover hooks") as s:
            s.detail = "; ".join(run_hooks(paths, self._hook_env("pre_failover"),
                                           scrub=secret_env_names(self.cluster)))

    def _post_hooks(self, outcome: str, error: str) -> None:
        paths = self.cluster.hooks.get("post_failover", ())
        if not paths or outcome == "refused":
            return
        try:
            with self.journal.step("post-failover hooks") as s:
                s.detail = "; ".join(run_hooks(paths, self._post_env(outcome, error),
                                               scrub=secret_env_names(self.cluster)))
        except UserError:
            pass  # recorded as a failed step

    def _post_env(self, outcome: str, error: str) -> dict[str, str]:
        return {**self._hook_env("post_failover"), "DBOPS_OUTCOME": outcome,
                "DBOPS_LOST_GTIDS": self.lost, "DBOPS_ERROR": error,
                "DBOPS_REPOINTED": ",".join(self.repointed),
                "DBOPS_LOST_REPLICAS": ",".join(n.split(": ", 1)[0] for n in self.not_repointed),
                "DBOPS_HAPROXY": self.traffic}

    def _hook_env(self, event: str) -> dict[str, str]:
        env = {"DBOPS_EVENT": event, "DBOPS_KIND": self.kind, "DBOPS_CLUSTER": self.cluster.name,
               "DBOPS_RECOVERY_ID": self.recovery_id, "DBOPS_ACTOR": self.opts.actor,
               "DBOPS_DRY_RUN": "1" if self.opts.dry_run else "0",
               "DBOPS_JOURNAL": str(self.journal.path or "")}
        for role, addr in (("OLD", self.old_primary), ("NEW", self.new_primary)):
            host, _, port = addr.rpartition(":")
            name = next((h.name for h in self.cluster.hosts
                         if addr and addr in (h.address, norm_address(h.host, h.port))), "")
            env |= {f"DBOPS_{role}_PRIMARY": addr, f"DBOPS_{role}_PRIMARY_HOST": host,
                    f"DBOPS_{role}_PRIMARY_PORT": port, f"DBOPS_{role}_PRIMARY_NAME": name}
        return env

    def switch_traffic(self) -> None:
        """Right after the promotion: the cluster's HAProxy writer backend
        follows (journal steps ``haproxy switch``/``haproxy confirm``); a
        failure is reported, the recovery stands."""
        if self.cluster.haproxy is not None:
            self.traffic = TrafficSwitch(self.cluster.haproxy, self.cluster, self.journal).run(
                self.old_primary, self.new_primary)

    def plan_traffic(self) -> None:
        if self.cluster.haproxy is not None:
            TrafficSwitch(self.cluster.haproxy, self.cluster, self.journal).plan(
                self.old_primary, self.new_primary)

    def record_history(self) -> None:
        """Recorded after the new primary took over: a failure here is a failed
        step in the journal, never a failed recovery."""
        if self.ops.state_dir is not None:
            history.record_local(self.ops.state_dir, self.cluster.name, self.kind,
                                 self.old_primary, self.new_primary, self.recovery_id)
        try:
            with self.journal.step("record history", self.new_primary) as s:
                s.sql.append(f"INSERT INTO {history.TABLE} (...)")
                history.record_remote(self.ops.conn(self.new_primary), self.cluster.name, self.kind,
                                      self.old_primary, self.new_primary, self.recovery_id)
                s.detail = f"recovery {self.recovery_id}"
        except Exception:  # noqa: BLE001 - recorded as a failed step
            pass

    def follow_relays(self) -> None:
        if self.relay_follow is None:
            return
        try:
            with self.journal.step("relay follows") as s:
                s.detail = "; ".join(self.relay_follow(self.cluster.name, self.new_primary)) or "no relay task"
        except Exception:  # noqa: BLE001 - recorded as a failed step; the recovery stands
            pass

    def repoint_all(self, addresses: list[str], *, skip: dict[str, str] | None = None) -> None:
        """Point every address at the new primary, in parallel."""
        skip = skip or {}
        user, password = self.ops.replication_user()
        host, _, port = self.new_primary.rpartition(":")

        def one(addr: str) -> None:
            if addr in skip:
                self.not_repointed.append(f"{addr}: {skip[addr]}")
                self.journal.note("repoint", skip[addr], addr, "skipped")
                return
            try:
                with self.journal.step("repoint", addr) as s:
                    self.ops.handler(addr).point_to(self.ops.conn(addr), host, int(port), user,
                                                    password, s.sql)
                    s.detail = f"replicates from {self.new_primary}"
                self.repointed.append(addr)
            except Exception as e:  # noqa: BLE001 - reported, the others go on
                self.not_repointed.append(f"{addr}: {e}")

        if addresses:
            with ThreadPoolExecutor(max_workers=min(8, len(addresses))) as ex:
                list(ex.map(one, addresses))
        self.repointed_ms = self.ms()
