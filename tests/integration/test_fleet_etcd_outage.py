"""etcd unreachable under a running fleet (issue 17, fencing): etcd is
stopped (SIGSTOP) longer than the lease; the engine cannot renew its
leases, so its relay and backup stop writing before etcd could give them to
another engine ("ownership lease lost"), and it says the coordinator is
down in one line.  When etcd answers again the engine takes its tasks back
from their checkpoints: at the end the relay is byte-identical with every
transaction once and the backup has no gap and no duplicate."""

from __future__ import annotations

import signal
import time

import pytest

from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.engine.coord.etcd import EtcdCoordinator
from console.engine.coord.url import parse_coordinator
from console.mysql import gtid as G
from tests.integration.relay_support import (
    Load,
    compare_with_upstream,
    gtid_pos,
    upstream_gtids,
    wait_meta_gtid,
)
from tests.integration.test_fleet_etcd import TTL, backup_task, engine_id, fleet_state
from tests.integration.test_serve import assert_consistent, datadir, relayed_gtids
from tests.support.backup_helpers import stored_gtids, wait_for
from tests.support.etcd import etcd  # noqa: F401 - the fixture
from tests.support.serving import cluster_part, relay_task

pytestmark = pytest.mark.integration


def test_an_engine_cut_off_from_etcd_stops_writing_and_takes_its_tasks_back(
        sandbox, tmp_path, serve, etcd):  # noqa: F811 - the fixture
    h = sandbox
    reader = EtcdCoordinator(parse_coordinator(etcd.url), ttl=TTL, engine_id="test")
    cfg = tmp_path / "engine.toml"
    cfg.write_text(cluster_part(h, tmp_path / "state") + relay_task("ro", tmp_path / "ro", 5461)
                   + backup_task("bo", tmp_path / "bo", 5462))
    with Load(h):
        e = serve(cfg, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
        for t in ("ro", "bo"):
            wait_for(lambda t=t: fleet_state(reader, t) == ("running", engine_id(e)), timeout=60,
                     what=f"{t} running")
        time.sleep(1.0)
        etcd.p.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: all(any(f"task {t}: ownership lease lost" in ln for ln in e.err)
                                 for t in ("ro", "bo")), timeout=4 * TTL + 10,
                     what="both tasks fenced while etcd is away")
            assert any("serve: coordinator:" in ln for ln in e.err), e.err[-20:]
            fenced_meta = (tmp_path / "ro" / "relay.meta").read_bytes()
            fenced_cp = Catalog(LocalStorage(tmp_path / "bo")).load_checkpoint()
            time.sleep(2.0)   # writes go on on the primary; nothing lands here
            assert (tmp_path / "ro" / "relay.meta").read_bytes() == fenced_meta
            assert Catalog(LocalStorage(tmp_path / "bo")).load_checkpoint() == fenced_cp
        finally:
            etcd.p.send_signal(signal.SIGCONT)
        wait_for(lambda: any("answers again" in ln for ln in e.err), timeout=30, what="etcd back")
        for t in ("ro", "bo"):
            wait_for(lambda t=t: fleet_state(reader, t) == ("running", engine_id(e)), timeout=60,
                     what=f"{t} taken back")
    end = gtid_pos(h)
    wait_meta_gtid(tmp_path / "ro", end, timeout=60)
    cat = Catalog(LocalStorage(tmp_path / "bo"))
    wait_for(lambda: (cp := cat.load_checkpoint()) is not None and G.position(end) <= G.position(cp.gtid),
             timeout=60, what="bo backed up to the end")
    e.p.send_signal(signal.SIGTERM)
    assert e.p.wait(60) == 0, e.err
    assert not any("Traceback" in ln for ln in e.err), e.err
    meta = assert_consistent(tmp_path / "ro")
    compare_with_upstream(tmp_path / "ro" / meta.subdir, datadir(h), h.sql("node1", "SHOW MASTER STATUS")[0][0])
    assert relayed_gtids(tmp_path / "ro") == upstream_gtids(h, "node1")
    seqs = [s for d, srv, s in stored_gtids(tmp_path / "bo") if d == 0]
    assert seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
