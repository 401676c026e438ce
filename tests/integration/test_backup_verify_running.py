"""``backup verify`` while the backup task runs under a write load: the
checkpoint moves during the verify (it may trail the segment being
published, or lead the segments verify listed): that is consistent and
reported OK, every time; a checkpoint that disagrees with its segment is
still reported."""

import json
import time

import pytest

from console.engine.backup.catalog import CHECKPOINT_KEY
from console.engine.backup.verify import verify
from tests.support.backup_helpers import Writer, running_backup, wait_backed_up, wait_for

pytestmark = pytest.mark.integration


def test_verify_while_the_backup_runs_under_load(sandbox, tmp_path):
    w = Writer(sandbox, "bk_verify_run").setup()
    reports = []
    with running_backup(sandbox, tmp_path, start_from="now", flush_interval=0.1) as (engine, task):
        w.start()
        try:
            wait_for(lambda: task.status().detail.checkpoint_seq >= 5, what="five segments")
            for _ in range(10):
                reports.append(verify(task.catalog))
                reports.append(verify(task.catalog, deep=False))
                time.sleep(0.05)
            head = engine.command("sandbox-backup", "verify")     # the task's own command
        finally:
            w.stop()
        assert not w.errors and w.count > 50
        wait_backed_up(sandbox, task)
    assert [r.problems for r in reports] == [[] for _ in reports]
    assert reports[-1].segments >= 5 and "OK" in head
    # stopped: a checkpoint that disagrees with its segment is reported
    store = tmp_path / "store"
    cp = json.loads((store / CHECKPOINT_KEY).read_text())
    head_, seq = cp["gtid"].rsplit("-", 1)
    cp["gtid"] = f"{head_}-{int(seq) + 5}"
    (store / CHECKPOINT_KEY).write_text(json.dumps(cp))
    r = verify(task.catalog)
    assert len(r.problems) == 1 and "does not match" in r.problems[0], r.problems
