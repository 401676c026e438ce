"""Replica actions: relocate a replica below another host, start/stop its
replication, set read_only.  Each takes the cluster's failover lease (no
recovery runs meanwhile) and can be a dry run that lists the exact
statements and changes nothing.

Relocate (MariaDB): ``STOP SLAVE`` on the host, wait until the new source
has applied everything the host has (``MASTER_GTID_WAIT`` on the source),
``CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos``, ``START SLAVE``, then
verify both threads run.  Refused before anything changes when the host
holds errant GTIDs, the new source cannot serve (binary log or
``log_slave_updates`` off), it is the host itself or below it (a cycle), it
diverged from the host, or it lacks GTIDs the host has and does not
replicate (so it never will get them)."""

from __future__ import annotations

import time
from dataclasses import replace

from console.engine.failover.context import ClusterOps
from console.engine.failover.journal import Journal
from console.engine.failover.lease import ClusterLease
from console.engine.topology.actions import checks
from console.engine.topology.actions.report import ActionReport, Runner
from console.errors import UserError


def _split(address: str) -> tuple[str, int]:
    h, _, p = address.rpartition(":")
    return h, int(p)


def _report(action, ops, journal, dry_run, host, **kw) -> ActionReport:
    return ActionReport(action, ops.cluster.name, dry_run, "planned" if dry_run else "ok", host=host,
                        steps=journal.snapshot(), **kw)


def _leased(ops: ClusterOps, topo, journal: Journal, dry_run: bool):
    lease = ClusterLease(ops.cluster.name, ops.state_dir)
    eps = [ops.endpoint(h.address) for h in topo.hosts if h.reachable]
    if dry_run:
        journal.plan("lease", "", [f"SELECT GET_LOCK('{lease.name}', 0)  -- on every reachable host"])
        return None
    with journal.step("lease") as s:
        held = lease.acquire(eps)
        s.sql.append(f"SELECT GET_LOCK('{lease.name}', 0)")
        s.detail = f"held on {', '.join(held)}"
    return lease


def _wait_running(ops: ClusterOps, address: str, timeout: float = 15.0) -> str:
    """"" when both replication threads run; else why not (an SQL error at
    once, anything else after ``timeout``)."""
    h = ops.handler(address)
    deadline = time.monotonic() + timeout
    while True:
        st = h.replica_status(ops.conn(address))
        c = st[0] if st else None
        if c is not None and c.io_running == "Yes" and c.sql_running == "Yes":
            return ""
        if c is not None and c.last_sql_error:
            return c.last_sql_error
        if time.monotonic() > deadline:
            if c is None:
                return "no replication configured"
            return c.last_io_error or f"replication threads io={c.io_running} sql={c.sql_running}"
        time.sleep(0.1)


def _wait_contains(ops: ClusterOps, address: str, want, timeout: float, log: list[str]) -> bool:
    """Poll a server's executed GTIDs (``gtid_current_pos`` and ``gtid_binlog_pos``:
    a primary's ``gtid_slave_pos`` does not move, so ``MASTER_GTID_WAIT`` would not do)."""
    h = ops.handler(address)
    log.append(f"-- poll @@global.gtid_current_pos, @@global.gtid_binlog_pos until they hold {want.format()}")
    deadline = time.monotonic() + timeout
    while True:
        if h.executed(ops.conn(address)).contains(want):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _check_not_purged(ops: ClusterOps, host, target) -> None:
    """TARGET's oldest binlog must not start after HOST's position (MariaDB:
    the ``Gtid_list`` of its first file), or HOST would need purged events."""
    if host.flavor != "mariadb":
        return
    from console.engine.topology.actions.divergence import oldest_gtid_list

    floor = oldest_gtid_list(ops.handler(target.address), ops.conn(target.address))
    mine = checks.executed(host)
    for d, iv in mine:
        have = iv[-1][1]
        if floor.get(int(d), 0) > have:
            raise UserError(f"--below {target.name}: its binary logs start after {host.name}'s position in "
                            f"domain {d} (seq {have} < {floor[int(d)]}: purged there); {host.name} could not "
                            f"continue from it")


def relocate(ops: ClusterOps, host_key: str, below: str, *, dry_run: bool = False,
             wait_timeout: float = 10.0, actor: str = "cli") -> ActionReport:
    topo = ops.discover()
    host = checks.reachable(checks.host_of(topo, ops.cluster, host_key), "host")
    target = checks.reachable(checks.host_of(topo, ops.cluster, below, "--below"), "--below")
    primary = checks.the_primary(topo)
    if host.address == primary.address:
        raise UserError(f"{host.name} is the primary: use `dbops-console switchover` to move the primary role")
    checks.check_no_cycle(topo, host, target)
    if not host.channels:
        raise UserError(f"{host.name} is not a replica: nothing to relocate")
    if host.upstream == target.address:
        raise UserError(f"{host.name} already replicates from {target.name}")
    checks.check_source_capable(target, target.address == primary.address)
    checks.check_no_errant(host, primary)
    if target.address != primary.address:
        checks.check_no_errant(target, primary)
    miss = checks.missing_on(target, host)
    if not miss.is_empty():
        mine, theirs = checks.executed(host), checks.executed(target)
        if [d for d in mine.diverged_domains(theirs) if d in theirs.keys()]:
            raise UserError(f"--below {target.name}: {target.name} and {host.name} diverged "
                            f"({miss.describe()}): not safe to chain them")
        if target.address != primary.address and target.sql_thread != "Yes":
            raise UserError(f"--below {target.name}: it lacks {miss.describe()} that {host.name} has "
                            f"and its replication is not running: it would never serve them")
    _check_not_purged(ops, host, target)
    user, password = ops.replication_user()
    th, tp = _split(target.address)
    hh = ops.handler(host.address)
    csql, cargs = hh.d.change_source_sql(th, tp, user)
    j = Journal(None, "relocate", ops.cluster.name)
    run = Runner(ops, j, dry_run)
    lease = _leased(ops, topo, j, dry_run)
    try:
        run.sql("stop replication", host.address, [hh.d.stop_replica_sql()])
        if dry_run:
            j.plan("new source has the host's position", target.address,
                   [f"-- poll @@global.gtid_current_pos, @@global.gtid_binlog_pos until they hold "
                    f"<host gtid_slave_pos after STOP SLAVE> (up to {wait_timeout:g}s)"],
                   f"{target.name} lacks {miss.describe()} now" if not miss.is_empty() else "")
        else:
            pos = hh._value(ops.conn(host.address), "SELECT @@global.gtid_slave_pos")
            with j.step("new source has the host's position", target.address) as s:
                from console.mysql import gtid as gtidmod

                want = gtidmod.parse(str(pos or ""), hh.flavor)
                if not _wait_contains(ops, target.address, want, wait_timeout, s.sql):
                    hh.start(ops.conn(host.address), s.sql)
                    raise UserError(f"{target.name} did not reach {host.name}'s position {want.format()} "
                                    f"within {wait_timeout:g}s; {host.name} replicates from its old source again")
                s.detail = f"{target.name} has {want.format()}"
        run.sql("change source", host.address, [(csql, (*cargs, password), len(cargs))],
                f"{host.name} -> {target.name} by GTID")
        run.sql("start replication", host.address, [hh.d.start_replica_sql()])
        if not dry_run:
            with j.step("verify", host.address) as s:
                err = _wait_running(ops, host.address)
                if err:
                    raise UserError(f"{host.name} does not replicate from {target.name}: {err}")
                s.detail = f"{host.name} replicates from {target.name}"
    except UserError as e:
        return replace(_report("relocate", ops, j, dry_run, host.address, target=target.address),
                       outcome="failed", error=str(e), steps=j.snapshot())
    finally:
        if lease is not None:
            lease.release()
    return _report("relocate", ops, j, dry_run, host.address, target=target.address,
                   detail=f"{host.name} below {target.name}")


def replication(ops: ClusterOps, host_key: str, start: bool, *, dry_run: bool = False) -> ActionReport:
    topo = ops.discover()
    host = checks.reachable(checks.host_of(topo, ops.cluster, host_key))
    if not host.channels:
        raise UserError(f"{host.name} is not a replica (no replication configured)")
    h = ops.handler(host.address)
    j = Journal(None, "replication", ops.cluster.name)
    action = "start-replica" if start else "stop-replica"
    try:
        Runner(ops, j, dry_run).sql(action, host.address,
                                    [h.d.start_replica_sql() if start else h.d.stop_replica_sql()])
        if start and not dry_run:
            with j.step("verify", host.address) as s:
                err = _wait_running(ops, host.address)
                if err:
                    raise UserError(f"{host.name}: replication does not run: {err}")
                s.detail = "io and sql threads running"
    except UserError as e:
        return ActionReport(action, ops.cluster.name, dry_run, "failed", host.address,
                            steps=j.snapshot(), error=str(e))
    return _report(action, ops, j, dry_run, host.address)


def read_only(ops: ClusterOps, host_key: str, on: bool, *, dry_run: bool = False) -> ActionReport:
    topo = ops.discover()
    host = checks.reachable(checks.host_of(topo, ops.cluster, host_key))
    if not on and host.channels and topo.primary is not None and host.address != topo.primary.address:
        raise UserError(f"read-only {host.name} off: it is a replica of {host.upstream}; a writable "
                        f"replica collects errant transactions (relocate or promote it first)")
    h = ops.handler(host.address)
    j = Journal(None, "read-only", ops.cluster.name)
    Runner(ops, j, dry_run).sql("read-only", host.address, h.d.set_read_only_sql(on))
    return _report("read-only", ops, j, dry_run, host.address, detail=f"read_only {'ON' if on else 'OFF'}")
