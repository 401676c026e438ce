"""A task of a shared fleet kicked out by its previous owner (issue 17).

An engine stopped (SIGSTOP) while it started a relay or a backup wakes up
after another engine took the task over; before its lease's fence stops it,
its dump session registers with the task's server_id and the server kicks
the new owner's session out with error 4052.  Outside a fleet that error is
an operator's (never retried); the owner of a fleet's task that still holds
its lease retries it for two lease periods instead, and goes on from its
checkpoint.  Found by the three-engine test under load (the new owner's
backup failed with 4052 and never reached the end): here the stale session
is a dump client of the test's own, deterministic."""

from __future__ import annotations

import signal
import time

import pytest

from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.engine.coord.etcd import EtcdCoordinator
from console.engine.coord.url import parse_coordinator
from console.mysql import gtid as G
from console.mysql.binlog.client import DumpClient, DumpError
from tests.integration.relay_support import (
    Load,
    gtid_pos,
    repl_endpoint,
    upstream_gtids,
    wait_meta_gtid,
)
from tests.integration.test_fleet_etcd import TTL, backup_task, engine_id, fleet_state
from tests.integration.test_serve import assert_consistent, relayed_gtids
from tests.support.backup_helpers import stored_gtids, wait_for
from tests.support.etcd import etcd  # noqa: F401 - the fixture
from tests.support.serving import cluster_part, relay_task

pytestmark = pytest.mark.integration


def steal(h, server_id: int) -> None:
    """Register a dump with ``server_id`` (the server kicks the task's own
    session out), stream a moment, let go."""
    c = DumpClient(repl_endpoint(h), server_id=server_id, heartbeat=0.5)
    try:
        c.open(gtid=gtid_pos(h))
        deadline = time.monotonic() + 1.0
        try:
            for _ in c.batches():
                if time.monotonic() > deadline:
                    break
        except DumpError:   # the task's retry kicked this one out in turn
            pass
    finally:
        c.close()


def test_the_owner_of_a_fleet_task_kicked_out_by_a_stale_session_goes_on(
        sandbox, tmp_path, serve, etcd):  # noqa: F811 - the fixture
    h = sandbox
    reader = EtcdCoordinator(parse_coordinator(etcd.url), ttl=TTL, engine_id="test")
    cfg = tmp_path / "engine.toml"
    cfg.write_text(cluster_part(h, tmp_path / "state") + relay_task("rk", tmp_path / "rk", 5451)
                   + backup_task("bk", tmp_path / "bk", 5452))
    with Load(h):
        e = serve(cfg, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
        for t in ("rk", "bk"):
            wait_for(lambda t=t: fleet_state(reader, t) == ("running", engine_id(e)), timeout=60,
                     what=f"{t} running")
        time.sleep(1.0)
        for sid in (5451, 5452):
            steal(h, sid)
        wait_for(lambda: sum("4052" in ln for ln in e.err) >= 2, timeout=20,
                 what="both sessions kicked out")
        time.sleep(2 * TTL)   # past the grace the retry had: both still run
        for t in ("rk", "bk"):
            assert fleet_state(reader, t) == ("running", engine_id(e)), (t, e.err[-20:])
    end = gtid_pos(h)
    wait_meta_gtid(tmp_path / "rk", end, timeout=60)
    cat = Catalog(LocalStorage(tmp_path / "bk"))
    wait_for(lambda: (cp := cat.load_checkpoint()) is not None and G.position(end) <= G.position(cp.gtid),
             timeout=60, what="bk backed up to the end")
    e.p.send_signal(signal.SIGTERM)
    assert e.p.wait(60) == 0, e.err
    assert not any("Traceback" in ln or "failed from running" in ln for ln in e.err), e.err
    assert_consistent(tmp_path / "rk")
    assert relayed_gtids(tmp_path / "rk") == upstream_gtids(h, "node1")
    seqs = [s for d, srv, s in stored_gtids(tmp_path / "bk") if d == 0]
    assert seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
