"""A failover during the log backup: the task follows the new primary by GTID
and the stored log has no gap and no duplicate across the two primaries."""

import signal
import time

import pytest

from console.config import load_config
from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.engine.backup.verify import verify
from console.engine.engine import Engine
from console.mysql.gtid import position
from tests.support.backup_helpers import Writer, backup_config, stored_gtids, wait_for

pytestmark = pytest.mark.integration


def _promote(sb, new: str, other: str) -> None:
    sb.sql(new, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0")
    sb.sql(other, "STOP SLAVE",
           f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={sb.port(new)}, "
           f"MASTER_USE_GTID=slave_pos", "START SLAVE")


def test_failover_during_backup_leaves_no_gap(make_sandbox, tmp_path):
    sb = make_sandbox()
    storage = tmp_path / "store"
    engine = Engine(load_config(backup_config(sb, tmp_path, storage, start_from="now",
                                              reconnect_max=1.0)))
    task = engine.create_configured("sandbox-backup")
    w1 = Writer(sb, "bk_fo").setup()
    w2 = None
    try:
        task.start()
        wait_for(lambda: task.status().phase == "streaming", what="streaming")
        w1.start()
        wait_for(lambda: task.status().detail.checkpoint_seq >= 3, what="segments from node1")
        w1.hold()
        sb.wait_replicas_caught_up()
        w1.stop()
        before = task.status().detail.checkpoint_gtid
        sb.sb.stop_node("node1", signal.SIGKILL)
        _promote(sb, "node2", "node3")
        w2 = Writer(sb, "bk_fo", node="node2").start()
        wait_for(lambda: task.status().detail.failovers >= 1, 30, what="the task to follow node2")
        time.sleep(2.0)
        w2.stop()
        final = sb.sql("node2", "SELECT @@gtid_binlog_pos")[0][0]
        wait_for(lambda: task.status().detail.checkpoint_gtid == final, 30, what="catch-up on node2")
        st = task.status().detail
        assert str(sb.port("node2")) in st.source
    finally:
        w1.stop()
        if w2:
            w2.stop()
        engine.shutdown()
    assert w2.count > 20 and not w2.errors
    gtids = stored_gtids(storage)
    servers = {s for _, s, _ in gtids}
    assert servers == {1, 2}, "transactions of both primaries are stored"
    seqs = [q for d, _, q in gtids if d == 0]
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "gap or duplicate across the failover"
    assert position(final).seq(0) == seqs[-1]
    assert position(before).seq(0) < seqs[-1]
    r = verify(Catalog(LocalStorage(storage)))
    assert r.ok, r.problems
