"""Re-attach an old primary below the current primary after a failover.

If it holds transactions the primary lacks (written after the replicas
stopped receiving, before it died) they are listed by GTID and, by default,
the re-attach is refused: re-attaching silently would keep data nobody
else has and break GTID replication later.  With ``flashback=True``
(replication-manager's "flashback rejoin"):

1. fence it: ``read_only=ON``, kill client connections;
2. list its binlog transactions again under the fence (exact GTIDs, see
   ``divergence.py``); the decoded events are kept as evidence in
   ``STATE_DIR/topology/<cluster>/reattach/<time>/errant.sql`` (0600);
3. ``mariadb-binlog --flashback`` of exactly those transactions' binlog
   ranges (read from the server, newest run first) is applied on it with
   ``sql_log_bin=0`` (the rollback itself writes no GTID);
4. ``RESET MASTER`` (its binlog holds the undone GTIDs: with
   ``gtid_strict_mode`` it could not log the primary's transactions of the
   same sequence numbers, and it must never serve them again) and
   ``gtid_slave_pos`` = the position before the first undone transaction;
5. ``CHANGE MASTER ... MASTER_USE_GTID=slave_pos``, ``START SLAVE``; it
   waits for the primary's position, and the errant check runs again.

Needs ROW binlogs with a FULL row image (the sandbox's and the house's
default); DDL cannot be flashed back: a transaction without row events in
the range is refused.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from console.engine.failover.context import ClusterOps
from console.engine.failover.journal import Journal
from console.engine.failover.lease import ClusterLease
from console.engine.topology.actions import checks, divergence
from console.engine.topology.actions.replica import _split, _wait_running
from console.engine.topology.actions.report import ActionReport
from console.errors import UserError
from console.mysql import gtid as gtidmod
from console.mysql.tools import client_options, need


def _old_primary_and_primary(ops: ClusterOps, topo, host_key: str):
    host = checks.reachable(checks.host_of(topo, ops.cluster, host_key))
    others = [h for h in topo.primaries if h.address != host.address and h.reachable]
    if len(others) != 1:
        raise UserError(f"reattach {host.name}: no single primary besides it "
                        f"(primaries: {', '.join(h.name for h in topo.primaries) or 'none'})")
    primary = others[0]
    kids = [h.name for h in topo.children(host.address)]
    if kids:
        raise UserError(f"reattach {host.name}: {', '.join(kids)} replicate from it; relocate them first")
    if host.upstream == primary.address and host.sql_thread == "Yes":
        raise UserError(f"{host.name} already replicates from the primary {primary.name}")
    if host.flavor != "mariadb":
        raise UserError(f"reattach {host.name}: MariaDB only (flashback needs mariadb-binlog)")
    return host, primary


def _binlog_tool(ep, args: list[str]) -> bytes:
    tool = need("mariadb-binlog", "mysqlbinlog")
    with client_options(ep) as cred:
        r = subprocess.run([tool, cred.arg, "--read-from-remote-server", *args],
                           pass_fds=cred.pass_fds, capture_output=True, timeout=600)
    if r.returncode != 0:
        err = (r.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise UserError(f"mariadb-binlog: {err}")
    return r.stdout


def _apply(ep, text: bytes) -> None:
    client = need("mariadb", "mysql")
    with client_options(ep) as cred:
        r = subprocess.run([client, cred.arg, "--binary-mode"], pass_fds=cred.pass_fds,
                           input=text, capture_output=True, timeout=600)
    if r.returncode != 0:
        err = (r.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise UserError(f"applying the flashback on {ep.address}: {err}")


def _evidence_dir(state_dir, cluster: str) -> Path | None:
    if state_dir is None:
        return None
    d = Path(state_dir) / "topology" / cluster / "reattach" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def reattach(ops: ClusterOps, host_key: str, *, flashback: bool = False, dry_run: bool = False,
             wait_timeout: float = 30.0, actor: str = "cli") -> ActionReport:
    topo = ops.discover()
    host, primary = _old_primary_and_primary(ops, topo, host_key)
    user, password = ops.replication_user()
    hh, ph = ops.handler(host.address), ops.handler(primary.address)
    hconn, pconn = ops.conn(host.address), ops.conn(primary.address)
    hb, pb = divergence.read_binlog_gtids(hh, hconn), divergence.read_binlog_gtids(ph, pconn)
    errant = divergence.errant_transactions(hb, pb)
    names = tuple(str(t.gtid) for t in errant)
    base = dict(action="reattach", cluster=ops.cluster.name, dry_run=dry_run, host=host.address,
                target=primary.address, errant=names)
    if errant and not flashback:
        return ActionReport(**base, outcome="refused",
                            error=f"{host.name} holds {len(errant)} transaction(s) the primary {primary.name} "
                                  f"lacks: {', '.join(names)}; not re-attached. Roll them back and re-attach "
                                  f"with --flashback, or leave {host.name} out of the cluster")
    mixed = divergence.interleaved(errant, hb)
    if mixed:
        raise UserError(f"reattach {host.name}: transactions {', '.join(map(str, mixed))} were written "
                        f"after the errant ones in the same domain: flashback cannot restore a state the "
                        f"primary had; rebuild {host.name} from a backup")
    j = Journal(None if dry_run else ops.state_dir, "reattach", ops.cluster.name)
    j.meta.update(old_primary=host.address, new_primary=primary.address, actor=actor,
                  errant=list(names), flashback=flashback)
    ph_, pp = _split(primary.address)
    csql, cargs = hh.d.change_source_sql(ph_, pp, user)
    ep = ops.endpoint(host.address)
    ranges = divergence.runs(errant, hb)
    fb_cmds = [f"mariadb-binlog --read-from-remote-server --flashback --start-position={s} "
               f"--stop-position={e} {f}  -- on {host.address}" for f, s, e in reversed(ranges)]
    if dry_run:
        j.plan("lease", "", [f"SELECT GET_LOCK('dbops-failover:{ops.cluster.name}', 0)  -- on every reachable host"])
        j.plan("fence", host.address, [*hh.d.set_read_only_sql(True), hh.d.client_threads_sql,
                                       "KILL CONNECTION <each client>"])
        if errant:
            j.plan("flashback", host.address,
                   [*fb_cmds, "-- output piped, after SET SESSION sql_log_bin=0, into: mariadb -h "
                    f"{ep.host} -P {ep.port}"], f"rolls back {', '.join(names)}")
            fork = divergence.fork_position(hb, pb, errant, _position(hh, hconn))
            j.plan("reset binlog state", host.address,
                   ["RESET MASTER", f"SET GLOBAL gtid_slave_pos = '{gtidmod.GtidSet.from_position(fork).format()}'"])
        else:
            j.plan("gtid_slave_pos", host.address, ["SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos"])
        j.plan("replicate", host.address, [hh.d.stop_replica_sql(), _render(csql, cargs), hh.d.start_replica_sql()])
        j.plan("verify", host.address, [hh.d.wait_for_gtid_sql() % ("'<primary gtid_binlog_pos>'", wait_timeout),
                                        "-- errant check against the primary"])
        return ActionReport(**base, outcome="planned", steps=j.snapshot())

    lease = ClusterLease(ops.cluster.name, ops.state_dir)
    undone: tuple[str, ...] = ()
    try:
        with j.step("lease") as s:
            held = lease.acquire([ops.endpoint(h.address) for h in topo.hosts if h.reachable])
            s.sql.append(f"SELECT GET_LOCK('{lease.name}', 0)")
            s.detail = f"held on {', '.join(held)}"
        with j.step("fence", host.address) as s:
            for q in hh.d.set_read_only_sql(True):
                hh._run(hconn, q, log=s.sql)
            killed = hh.kill_clients(hconn, {lease.thread_ids().get(host.address, -1)}, s.sql)
            s.detail = f"read_only ON, {len(killed)} client connection(s) killed"
        hb = divergence.read_binlog_gtids(hh, hconn)  # again, under the fence
        errant = divergence.errant_transactions(hb, pb)
        if errant:
            names = tuple(str(t.gtid) for t in errant)
            ranges = divergence.runs(errant, hb)
            fork = divergence.fork_position(hb, pb, errant, _position(hh, hconn))
            with j.step("flashback", host.address) as s:
                ev = _evidence_dir(ops.state_dir, ops.cluster.name)
                original = b"".join(_binlog_tool(ep, [f"--start-position={st}", f"--stop-position={en}", f])
                                    for f, st, en in ranges)
                back = b"".join(_binlog_tool(ep, ["--flashback", f"--start-position={st}",
                                                  f"--stop-position={en}", f])
                                for f, st, en in reversed(ranges))
                if b"BINLOG '" not in back:
                    raise UserError(f"flashback of {', '.join(names)} produced no row events "
                                    f"(DDL or statement-based binlog?): nothing was rolled back")
                if ev is not None:
                    _write_private(ev / "errant.sql", original)
                    _write_private(ev / "flashback.sql", back)
                s.sql += [*(c.replace(f"  -- on {host.address}", "") for c in
                            [f"mariadb-binlog --read-from-remote-server --flashback --start-position={st} "
                             f"--stop-position={en} {f}" for f, st, en in reversed(ranges)]),
                          f"-- piped after SET SESSION sql_log_bin=0 into mariadb -h {ep.host} -P {ep.port}"]
                _apply(ep, b"SET SESSION sql_log_bin=0;\n" + back)
                undone = names
                s.detail = f"rolled back {', '.join(names)}" + (f"; evidence in {ev}" if ev else "")
            with j.step("reset binlog state", host.address) as s:
                hh._run(hconn, hh.d.stop_replica_sql(), log=s.sql)
                hh._run(hconn, "RESET MASTER", log=s.sql)
                pos = gtidmod.GtidSet.from_position(fork).format()
                hh._run(hconn, "SET GLOBAL gtid_slave_pos = %s", (pos,), log=s.sql)
                s.detail = f"gtid_slave_pos {pos} (before the first rolled-back transaction)"
        else:
            with j.step("gtid_slave_pos", host.address) as s:
                hh._run(hconn, hh.d.stop_replica_sql(), log=s.sql)
                hh._run(hconn, "SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos", log=s.sql)
        with j.step("replicate", host.address) as s:
            hh._run(hconn, csql, (*cargs, password), log=s.sql, secret_index=len(cargs))
            hh._run(hconn, hh.d.start_replica_sql(), log=s.sql)
        with j.step("verify", host.address) as s:
            err = _wait_running(ops, host.address)
            if err:
                raise UserError(f"{host.name} does not replicate from {primary.name}: {err}")
            target = gtidmod.parse(ph._value(pconn, "SELECT @@global.gtid_binlog_pos"), gtidmod.MARIADB)
            if not hh.wait_gtid(hconn, target, wait_timeout, s.sql):
                raise UserError(f"{host.name} did not reach the primary's position {target.format()} "
                                f"within {wait_timeout:g}s")
            left = divergence.errant_transactions(divergence.read_binlog_gtids(hh, hconn),
                                                  divergence.read_binlog_gtids(ph, pconn))
            if left:
                raise UserError(f"{host.name} still holds {', '.join(str(t.gtid) for t in left)}")
            s.detail = f"replicates from {primary.name} at {target.format()}; no errant GTID"
    except UserError as e:
        j.flush(outcome="failed", error=str(e), rolled_back=list(undone))
        return ActionReport(**{**base, "errant": names}, outcome="failed", error=str(e), steps=j.snapshot(),
                            rolled_back=undone, journal=str(j.path or ""))
    finally:
        lease.release()
    j.flush(outcome="ok", rolled_back=list(undone), finished=time.time())
    return ActionReport(**{**base, "errant": names}, outcome="ok", steps=j.snapshot(), rolled_back=undone,
                        journal=str(j.path or ""),
                        detail=f"{host.name} replicates from {primary.name}"
                               + (f"; rolled back {', '.join(undone)}" if undone else ""))


def _position(handler, conn) -> list[gtidmod.Gtid]:
    text = str(handler._value(conn, "SELECT @@global.gtid_binlog_pos") or "")
    return [gtidmod.Gtid.parse(x) for x in text.split(",") if x.strip()]


def _render(sql: str, args: tuple) -> str:
    from console.engine.failover.handlers import render

    return render(sql, (*args, "x"), secret_index=len(args))
