"""A fleet whose engines do not all know every cluster (issue 17): engine
1's file declares four relays of cluster `sandbox`; engine 2's file knows
only another cluster, so it cannot adopt them.  Its share (4 tasks over 2
engines: 2 each) would leave two relays running nowhere; engine 1 takes
them past its share once they stayed free (``fleet.ORPHAN_AFTER``).
Before that rule two of the four never started."""

from __future__ import annotations

import signal

import pytest

from tests.integration.relay_support import Load, gtid_pos, upstream_gtids, wait_meta_gtid
from tests.integration.test_serve import assert_consistent, relayed_gtids
from tests.support.backup_helpers import wait_for
from tests.support.etcd import etcd  # noqa: F401 - the fixture
from tests.support.fleet import TTL, engine_id, owners, reader_of
from tests.support.serving import cluster_part, relay_task

pytestmark = pytest.mark.integration

RELAYS = ("o1", "o2", "o3", "o4")


def test_tasks_no_other_engine_can_run_are_run_past_the_share(sandbox, tmp_path, serve, etcd):  # noqa: F811
    h = sandbox
    reader = reader_of(etcd)
    cfg1, cfg2 = tmp_path / "engine1.toml", tmp_path / "engine2.toml"
    cfg1.write_text(cluster_part(h, tmp_path / "state1")
                    + "".join(relay_task(r, tmp_path / r, 5471 + i) for i, r in enumerate(RELAYS)))
    cfg2.write_text(cluster_part(h, tmp_path / "state2").replace("clusters.sandbox", "clusters.elsewhere"))
    with Load(h):
        e1 = serve(cfg1, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
        e2 = serve(cfg2, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
        wait_for(lambda: len(reader.engines()) == 2 if reader.refresh() is None else False, timeout=60,
                 what="two engines in the fleet")
        try:
            wait_for(lambda: owners(reader) == {r: engine_id(e1) for r in RELAYS}, timeout=60,
                     what="every relay run by engine 1")
        except AssertionError:
            raise AssertionError(f"{owners(reader)}\n" + "\n".join(e1.err[-30:])) from None
        left_out = [ln for ln in e2.err if "left out" in ln]
        assert len(left_out) == len(RELAYS) and all("'sandbox'" in ln for ln in left_out), e2.err
    end = gtid_pos(h)
    for r in RELAYS:
        wait_meta_gtid(tmp_path / r, end, timeout=60)
    for e in (e1, e2):
        e.p.send_signal(signal.SIGTERM)
        assert e.p.wait(60) == 0, e.err
    ups = upstream_gtids(h, "node1")
    for r in RELAYS:
        assert_consistent(tmp_path / r)
        assert relayed_gtids(tmp_path / r) == ups, r
