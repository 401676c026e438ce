"""Planned switchover: move the primary role to a healthy replica on purpose.

Steps: pre-checks (candidate eligible and caught up, no errant GTIDs, no
long transaction on the primary) -> lease -> pre hooks -> catch-up (outside
the fence, to keep the write block short) -> fence the primary (read_only,
kill client connections, global read lock) -> wait for the candidate to
apply the primary's final GTID position (timeout: the fence is rolled back)
-> promote -> repoint the other replicas -> the old primary replicates from
the new one.  The write-block window is from the fence to the promotion.
"""

from __future__ import annotations

import time

from console.engine.failover.model import Candidate
from console.engine.failover.ranking import PLANNED, best, rank
from console.engine.failover.recovery import Recovery, RecoveryFailed
from console.errors import UserError


class Switchover(Recovery):
    kind = "switchover"

    def _run(self) -> None:
        topo = self.ops.discover(self.previous)
        live = [h for h in topo.hosts if h.role == "primary" and h.reachable]
        primary = live[0] if len(live) == 1 else None
        if primary is None:
            raise UserError(f"cluster {self.cluster.name}: no reachable primary "
                            f"({'; '.join(topo.problems) or 'none found'}); use failover instead")
        self.old_primary = primary.address
        replicas = [h for h in topo.hosts if h.upstream == primary.address]
        self.candidates = rank(primary, replicas, self.ops.rules(self.opts), PLANNED)
        cand = self._choose(topo)
        self.new_primary = cand.address
        others = [h.address for h in replicas if h.address != cand.address and h.reachable]
        skipped = {h.address: f"unreachable: {h.error}" for h in replicas if not h.reachable}
        ph = self.ops.handler(primary.address)
        ch = self.ops.handler(cand.address)
        user, _ = self.ops.replication_user()
        nh, _, np = cand.address.rpartition(":")

        long_trx = ph.long_transactions(self.ops.conn(primary.address), self.opts.max_trx_seconds)
        if long_trx:
            tid, age = long_trx[0]
            raise UserError(f"{primary.name}: transaction in connection {tid} has run for {age}s "
                            f"(over {self.opts.max_trx_seconds}s); finish or kill it first")
        if self.opts.dry_run:
            j = self.journal
            j.plan("lease", "", [f"SELECT GET_LOCK('{self.lease.name}', 0)  -- on every reachable host"])
            if self.cluster.hooks.get("pre_failover"):
                j.plan("pre-failover hooks", "", list(self.cluster.hooks["pre_failover"]))
            j.plan("catch up", cand.address, [ch.d.wait_for_gtid_sql() % ("'<primary gtid>'", self.opts.wait_timeout)])
            j.plan("fence", primary.address, [*ph.fence_sql(), ph.d.client_threads_sql,
                                              "KILL CONNECTION <each client>", ph.d.fence_lock_sql])
            j.plan("wait candidate", cand.address,
                   [ch.d.wait_for_gtid_sql() % ("'<final gtid>'", self.opts.wait_timeout)],
                   "on timeout: UNLOCK TABLES and read_only OFF on the primary (fence rolled back)")
            j.plan("promote", cand.address, ch.promote_sql())
            self.plan_traffic()
            for a in others:
                j.plan("repoint", a, self.ops.handler(a).point_to_sql(nh, int(np), user))
            j.plan("old primary replicates", primary.address,
                   ph.point_to_sql(nh, int(np), user, former_primary=True))
            return

        self.take_lease(topo)
        self.pre_hooks()
        pconn = self.ops.conn(primary.address)
        cconn = self.ops.conn(cand.address)
        with self.journal.step("catch up", cand.address) as s:
            s.detail = self._catch_up(ph, ch, pconn, cconn, s.sql)

        fconn = self.ops.conn(primary.address, fresh=True)  # holds the global read lock
        keep = {fconn.thread_id()}
        lease_id = self.lease.thread_ids().get(primary.address)
        if lease_id:
            keep.add(lease_id)
        keep |= {c.thread_id() for c in (pconn,)}
        self.acted = True
        promoting = False
        try:
            with self.journal.step("fence", primary.address) as s:
                t_block = time.monotonic()
                killed = ph.fence(fconn, keep, s.sql)
                final = ph.executed(fconn)
                s.detail = f"read_only, {len(killed)} client connection(s) killed, final GTID {final}"
            with self.journal.step("wait candidate", cand.address) as s:
                if not ch.wait_gtid(cconn, final, self.opts.wait_timeout, s.sql):
                    raise RecoveryFailed(f"{cand.name} did not reach {final} within "
                                         f"{self.opts.wait_timeout:g}s; fence rolled back")
                s.detail = f"applied {final}"
            promoting = True
            with self.journal.step("promote", cand.address) as s:
                ch.promote(cconn, s.sql)
                self.write_block_ms = (time.monotonic() - t_block) * 1000
                self.promoted_ms = self.ms()
                s.detail = f"writable; write block {self.write_block_ms:.0f} ms"
        except BaseException:
            # the old primary takes writes again; a half-promoted candidate
            # goes back to replicating from it
            with self.journal.step("roll back fence", primary.address) as s:
                ph.unfence(fconn, s.sql)
            if promoting:
                with self.journal.step("roll back candidate", cand.address) as s:
                    for q in ch.d.set_read_only_sql(True):
                        ch._run(cconn, q, log=s.sql)
                    user, password = self.ops.replication_user()
                    ph_host, _, ph_port = primary.address.rpartition(":")
                    ch.point_to(cconn, ph_host, int(ph_port), user, password, s.sql)
            raise
        self.switch_traffic()
        self.repoint_all(others, skip=skipped)
        if skipped:
            self.repoint_all(list(skipped), skip=skipped)
        user, password = self.ops.replication_user()
        try:
            with self.journal.step("old primary replicates", primary.address) as s:
                ph.point_to(fconn, nh, int(np), user, password, s.sql, former_primary=True,
                            keep_ids=keep, final=final)
                s.detail = f"{primary.address} replicates from {cand.address}"
            self.repointed.append(primary.address)
        except Exception as e:  # noqa: BLE001 - reported; the switchover itself is done
            self.not_repointed.append(f"{primary.address}: {e}")
        self.repointed_ms = self.ms()
        self._verify_replicating([*self.repointed])
        self.record_history()
        self.follow_relays()

    def _catch_up(self, ph, ch, pconn, cconn, log: list[str]) -> str:
        """Before the fence: wait for the candidate to reach the primary's
        position, again and again, until one round is short; the backlog left
        for the write-block window is then what accrues in one short round.
        A candidate that does not converge within ``wait_timeout`` refuses the
        switchover before anything is fenced."""
        deadline = time.monotonic() + self.opts.wait_timeout
        rounds, took = 0, 0.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            rounds += 1
            t = time.monotonic()
            ok = ch.wait_gtid(cconn, ph.executed(pconn), left, log if rounds == 1 else None)
            took = time.monotonic() - t
            if not ok:
                break
            if took < 0.05 or (rounds >= 50 and took < 1.0):
                return f"caught up ({rounds} round(s), last {took * 1000:.0f} ms)"
        raise UserError(f"{self.new_primary}: the candidate does not catch up with the primary "
                        f"within {self.opts.wait_timeout:g}s (last round {took:.1f}s): it applies "
                        f"more slowly than the primary writes; nothing was fenced")

    def _choose(self, topo) -> Candidate:
        if self.opts.to:
            addr = self.ops.resolve(topo, self.opts.to)
            c = next((c for c in self.candidates if c.address == addr), None)
            if c is None:
                raise UserError(f"--to {self.opts.to}: {addr} is not a replica of the primary "
                                f"{self.old_primary}")
            if not c.eligible:
                raise UserError(f"--to {self.opts.to}: {c.name} cannot be promoted: {'; '.join(c.reasons)}")
            return c
        c = best(self.candidates)
        if c is None:
            why = "; ".join(f"{c.name}: {', '.join(c.reasons)}" for c in self.candidates) or "no replicas"
            raise UserError(f"cluster {self.cluster.name}: no replica can be promoted ({why})")
        return c

    def _verify_replicating(self, addresses: list[str], timeout: float = 5.0) -> None:
        """Wait (briefly) until each repointed server's replication threads run."""
        deadline = time.monotonic() + timeout
        with self.journal.step("verify replication") as s:
            bad = []
            for a in addresses:
                h = self.ops.handler(a)
                while True:
                    st = h.replica_status(self.ops.conn(a))
                    if st and st[0].io_ok and st[0].sql_ok:
                        break
                    if time.monotonic() > deadline:
                        err = (st[0].last_io_error or st[0].last_sql_error or st[0].io_running) if st else "no channel"
                        bad.append(f"{a}: {err}")
                        break
                    time.sleep(0.05)
            s.detail = "all replicating" if not bad else "; ".join(bad)
