"""Emergency failover: the primary is dead (console AND replicas lost it).

Steps: detection (re-checked under the lease, so a second console finds the
cluster already recovered) -> anti-flapping (automatic recoveries) -> pre
hooks -> stop every replica's IO thread -> wait for relay logs to be applied
-> rank -> salvage what a more advanced server holds into the candidate ->
promote -> repoint every reachable replica -> report, by GTID range, what
could not be saved.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from console.engine.failover import history
from console.engine.failover.detection import assess, find_primary
from console.engine.failover.model import Candidate
from console.engine.failover.ranking import EMERGENCY, best, executed, flavor_of, rank, salvage_keys
from console.engine.failover.recovery import Recovery, RecoveryFailed
from console.engine.failover.salvage import ReplicaDonor, SalvageSource, salvage
from console.engine.failover.salvage_relay import (
    RelaySource,
    relay_sources,
    sources_from_dirs,
    survivor_positions,
)
from console.engine.topology.model import Topology
from console.errors import UserError
from console.mysql import gtid as gtidmod
from console.mysql.probe import HostState


class Failover(Recovery):
    kind = "failover"

    def __init__(self, *a, extra_sources: list[SalvageSource] | None = None, **kw):
        super().__init__(*a, **kw)
        self.extra_sources = list(extra_sources or [])

    def _check(self, topo: Topology) -> HostState:
        writable = [h for h in topo.hosts if h.reachable and not h.channels and not h.read_only]
        if writable and self.old_primary and all(h.address != self.old_primary for h in writable):
            raise UserError(f"cluster {self.cluster.name}: already recovered: {writable[0].name} "
                            f"({writable[0].address}) is a writable primary; nothing to fail over")
        verdict = assess(topo, self.previous)
        primary = find_primary(topo, self.previous)
        if primary is not None and primary.reachable:
            raise UserError(f"cluster {self.cluster.name}: primary {primary.name} ({primary.address}) "
                            f"is reachable and healthy: nothing to fail over (use switchover)")
        if not verdict.dead and not self.opts.force:
            raise UserError(f"cluster {self.cluster.name}: {verdict.reason}; not failing over "
                            f"(pass --force to override detection)")
        if primary is None:
            raise UserError(f"cluster {self.cluster.name}: {verdict.reason}")
        return primary

    def _run(self) -> None:
        given = sources_from_dirs(self.opts.binlog_dirs)  # bad input: refuse now
        # relay tasks of the cluster (config and engine) and relay dirs given as --binlog-dir:
        # one source per directory (a relay task's directory given again is that task's)
        self._relays = relay_sources([*self.opts.relay_dirs,
                                      *((s.label, str(s.root)) for s in given if isinstance(s, RelaySource))])
        self._binlog_sources = [s for s in given if not isinstance(s, RelaySource)]
        self.ops.replication_user()  # repointing needs it: refuse now, not half-way
        topo = self.first_snapshot()
        primary = self._check(topo)
        self.old_primary = primary.address
        replicas = [h for h in topo.hosts if h.upstream == primary.address and h.reachable]
        if not replicas:
            raise UserError(f"cluster {self.cluster.name}: no reachable replica of {primary.address}")
        if self.opts.dry_run:
            self._plan(primary, replicas)
            return

        self.take_lease(topo)
        # under the lease: maybe another console has recovered the cluster meanwhile
        topo = self.ops.discover(self.previous)
        primary = self._check(topo)
        replicas = [h for h in topo.hosts if h.upstream == primary.address and h.reachable]
        if self.opts.actor == "auto" and not self.opts.ignore_block:
            self._anti_flap(replicas)
        self.pre_hooks()
        addrs = [h.address for h in replicas]
        self.acted = True
        self._parallel(addrs, "stop IO thread", lambda a, s: self.ops.handler(a).stop_io(self.ops.conn(a), s.sql))
        drained = {}

        def drain(a, s):
            drained[a] = self.ops.handler(a).wait_relay_applied(self.ops.conn(a), self.opts.relay_wait, s.sql)
            s.detail = "relay log applied" if drained[a] else "relay log NOT fully applied"
        self._parallel(addrs, "apply relay log", drain)

        # re-read positions, rank
        fresh = self.ops.discover(topo)
        replicas = [h for h in fresh.hosts if h.address in addrs and h.reachable]
        last_known = primary if (primary.gtid_binlog_pos or primary.gtid_executed) else None
        rules = self.ops.rules(self.opts)
        survivors = self._survivors(replicas)
        self.candidates = rank(last_known or primary, replicas, rules, EMERGENCY, survivors)
        try:
            cand = self._choose(fresh)
        except RecoveryFailed:
            self._restart_io(addrs)
            raise
        self.new_primary = cand.address

        keys = salvage_keys(last_known, replicas, survivors)
        have, known, clean, sources = self._salvage_sources(cand.address, last_known, replicas,
                                                            survivors, keys)
        saved, lost, by_source = salvage(self.ops, cand.address, have, known, sources, self.journal,
                                         self.opts.salvage_timeout,
                                         lambda a: self.ops.handler(a).executed(self.ops.conn(a)).restrict(keys))
        self.salvaged = "" if saved.is_empty() else saved.describe()
        self.salvaged_from = [f"{name}: {got.describe()}" for name, got in by_source]
        self.lost = "" if lost.is_empty() else lost.describe()
        if lost:
            self.journal.note("not saved", f"{lost.describe()} ({lost.format()})", "", "failed")

        cconn = self.ops.conn(cand.address)
        ch = self.ops.handler(cand.address)
        with self.journal.step("promote", cand.address) as s:
            ch.promote(cconn, s.sql)
            self.promoted_ms = self.ms()
            s.detail = "writable" + (f"; salvaged {self.salvaged}" if self.salvaged else "")
        self.switch_traffic()
        new_have = ch.executed(cconn).restrict(keys)
        skip = {}
        for a, pos in clean.items():
            extra = pos.subtract(new_have)
            if a != cand.address and not extra.is_empty():
                skip[a] = f"holds {extra.describe()} that the new primary lacks: fix by hand"
        for c in self.candidates:
            if c.errant and c.address != cand.address:
                # errant replicas are still repointed (their extra GTIDs are their own);
                # the report says so
                self.journal.note("warning", f"{c.name} has errant GTIDs {c.errant}", c.address)
        others = [a for a in addrs if a != cand.address]
        self.repoint_all(others, skip=skip)
        self.record_history()
        self.follow_relays()

    def _salvage_sources(self, cand: str, last_known: HostState | None, replicas: list[HostState],
                         survivors: dict, keys) -> tuple:
        """(the candidate's position, every GTID known to exist, the clean
        replicas' positions, the salvage sources in the order they are
        tried): the run applies these sources, the dry run shows them."""
        by_addr = {h.address: h for h in replicas}
        clean = {c.address: executed(by_addr[c.address]).restrict(keys)
                 for c in self.candidates if c.advanced >= 0 and not c.errant and c.address in by_addr}
        known = gtidmod.GtidSet.empty(flavor_of(by_addr[cand]))
        for pos in clean.values():
            known = known.union(pos)
        if last_known is not None:
            known = known.union(executed(last_known).restrict(keys))
        for name, pos in survivors.items():  # what the relay tasks durably hold
            known = known.union(pos.restrict(keys))
            self.journal.note("survivor", f"{name}: durable position {pos.format() or 'empty'}", "", "ok")
        have = clean.get(cand, executed(by_addr[cand]).restrict(keys))
        donors = sorted((a for a in clean if a != cand and not clean[a].subtract(have).is_empty()),
                        key=lambda a: -clean[a].count())
        donor_ok = [a for a in donors if by_addr[a].log_bin and by_addr[a].log_slave_updates]
        sources: list[SalvageSource] = [ReplicaDonor(a, clean[a]) for a in donor_ok] + self.extra_sources
        sources += [s for s in self._relays if s.name in survivors]
        sources += self._binlog_sources
        return have, known, clean, sources

    def _survivors(self, replicas: list[HostState]) -> dict:
        """Relay tasks' durable positions (MariaDB GTIDs only), by source name."""
        if not self._relays or any(flavor_of(h) != gtidmod.MARIADB for h in replicas):
            return {}
        return survivor_positions(self._relays, lambda src, e: self.journal.note(
            "survivor", f"{src.name}: unreadable: {e}", "", "failed"))

    def _restart_io(self, addrs: list[str]) -> None:
        """Nothing could be promoted: give the replicas their IO threads back
        (they keep retrying the old primary, as before the attempt)."""
        def one(a, s):
            h = self.ops.handler(a)
            h._run(self.ops.conn(a), h.d.start_replica_sql(), log=s.sql)
        try:
            self._parallel(addrs, "roll back: restart replication", one)
        except RecoveryFailed:
            pass

    def _choose(self, topo: Topology) -> Candidate:
        if self.opts.to:
            addr = self.ops.resolve(topo, self.opts.to)
            c = next((c for c in self.candidates if c.address == addr), None)
            if c is None or not c.eligible:
                why = "; ".join(c.reasons) if c else "not a reachable replica of the old primary"
                raise RecoveryFailed(f"--to {self.opts.to}: cannot be promoted: {why}; replication was "
                                     f"restarted; run failover again without --to")
            return c
        c = best(self.candidates)
        if c is None:
            why = "; ".join(f"{c.name}: {', '.join(c.reasons)}" for c in self.candidates)
            raise RecoveryFailed(f"cluster {self.cluster.name}: no replica can be promoted ({why}); "
                                 f"replication was restarted")
        return c

    def _anti_flap(self, replicas: list[HostState]) -> None:
        recs = []
        if self.ops.state_dir is not None:
            recs += history.load_local(self.ops.state_dir, self.cluster.name)
        for h in replicas[:1]:
            recs += history.load_remote(self.ops.conn(h.address), self.cluster.name)
        blocking = history.blocking(recs, self.cluster.block_period,
                                    acked_at=history.acknowledged_at(self.ops.state_dir, self.cluster.name))
        if blocking:
            age = time.time() - blocking.at
            raise UserError(f"cluster {self.cluster.name}: automatic recovery blocked: a {blocking.kind} "
                            f"{age:.0f}s ago ({blocking.old_primary} -> {blocking.new_primary}) is not "
                            f"acknowledged (block_period {self.cluster.block_period:g}s); acknowledge it first")

    def _parallel(self, addrs: list[str], name: str, fn) -> None:
        errors = []

        def one(a):
            try:
                with self.journal.step(name, a) as s:
                    fn(a, s)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{a}: {e}")
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(addrs)))) as ex:
            list(ex.map(one, addrs))
        if errors and len(errors) == len(addrs):
            raise RecoveryFailed(f"{name} failed everywhere: {'; '.join(errors)}")

    def _plan(self, primary: HostState, replicas: list[HostState]) -> None:
        j = self.journal
        j.plan("lease", "", [f"SELECT GET_LOCK('{self.lease.name}', 0)  -- on every reachable host"])
        if self.cluster.hooks.get("pre_failover"):
            j.plan("pre-failover hooks", "", list(self.cluster.hooks["pre_failover"]))
        for h in replicas:
            hd = self.ops.handler(h.address)
            j.plan("stop IO thread", h.address, [hd.d.stop_replica_sql(io_only=True)])
            j.plan("apply relay log", h.address, [f"-- poll {hd.d.replica_status_sql} until Exec = Read"])
        last_known = primary if (primary.gtid_binlog_pos or primary.gtid_executed) else None
        survivors = self._survivors(replicas)
        self.candidates = rank(last_known or primary, replicas, self.ops.rules(self.opts), EMERGENCY,
                               survivors)
        try:
            cand = self._choose(Topology(self.cluster.name, tuple(replicas)))
        except UserError as e:
            j.plan("choose", "", [], str(e))
            return
        self.new_primary = cand.address
        j.plan("choose", cand.address, [], f"{cand.name}: {', '.join(cand.reasons)} "
                                           "(ranking re-checked after relay logs are applied)")
        keys = salvage_keys(last_known, replicas, survivors)
        have, known, _, sources = self._salvage_sources(cand.address, last_known, replicas,
                                                        survivors, keys)
        user, _ = self.ops.replication_user()
        for src in sources:  # the very sources the run tries, in its order
            src.plan(self.ops, cand.address, known.subtract(have), j, self.opts.salvage_timeout)
        nh, _, np = cand.address.rpartition(":")
        j.plan("promote", cand.address, self.ops.handler(cand.address).promote_sql())
        self.plan_traffic()
        for h in replicas:
            if h.address != cand.address:
                j.plan("repoint", h.address, self.ops.handler(h.address).point_to_sql(nh, int(np), user))
