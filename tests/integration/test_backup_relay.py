"""The backup can read a relay task's files (built on RelayReader) instead of
opening its own dump: same segments, no gap, no duplicate."""

import re

import pytest

from console.config import load_config
from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.engine.backup.verify import verify
from console.engine.engine import Engine
from console.mysql.gtid import position
from tests.support.backup_helpers import Writer, backup_config, stored_gtids, wait_for

pytestmark = pytest.mark.integration


def test_backup_from_relay_files(sandbox, tmp_path):
    relay_dir = tmp_path / "relay"
    storage = tmp_path / "store"
    p = backup_config(sandbox, tmp_path, storage, start_from="now", relay_dir=str(relay_dir),
                      flush_interval=0.2)
    text = re.sub(r'(?m)^relay_dir = .*$\n(?=server_id = 4242)', f'relay_dir = "{relay_dir}"\n',
                  p.read_text())
    text = text.replace("[tasks.sandbox-relay]\n", '[tasks.sandbox-relay]\nstart_from = "now"\n')
    p.write_text(text)
    cfg = load_config(p)
    assert cfg.task("sandbox-relay").options.relay_dir == relay_dir
    engine = Engine(cfg)
    relay = engine.create_configured("sandbox-relay")
    backup = engine.create_configured("sandbox-backup")
    w = Writer(sandbox, "bk_relay").setup()
    try:
        relay.start()
        wait_for(lambda: relay.status().phase in ("streaming", "caught-up"), what="relay streaming")
        backup.start()
        wait_for(lambda: backup.status().phase == "reading-relay", what="backup reading the relay")
        w.start()
        wait_for(lambda: backup.status().detail.checkpoint_seq >= 3, 30, what="segments")
        w.stop()
        final = sandbox.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
        wait_for(lambda: backup.status().detail.checkpoint_gtid == final, 30, what="catch-up")
    finally:
        w.stop()
        engine.shutdown()
    assert w.count > 50 and not w.errors
    seqs = [q for d, _, q in stored_gtids(storage) if d == 0]
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    assert seqs[-1] == position(final).seq(0)
    r = verify(Catalog(LocalStorage(storage)))
    assert r.ok, r.problems
