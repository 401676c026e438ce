"""A migration run by ``serve`` outlives the service process: SIGTERM
during its copy (the task checkpoints and stops, exit 0), then kill -9
during the copy of the next run; each next ``serve`` continues from the
checkpoint (no restart from zero, nothing copied twice); the cut-over is
then asked for through the API, and the table has every row with its new
column while writes went on throughout."""

from __future__ import annotations

import json
import signal

import pytest

from console.api.client import connect as api
from tests.integration.migration_helpers import DB, columns
from tests.integration.migration_helpers import connect as db
from tests.support.backup_helpers import wait_for
from tests.support.serving import cluster_part

pytestmark = pytest.mark.integration

TABLE = "served"
ROWS = 30000


def migration_task(flag) -> str:
    return (f'\n[tasks.mig]\nkind = "migration"\ncluster = "sandbox"\ndatabase = "{DB}"\n'
            f'table = "{TABLE}"\nalter = "ADD COLUMN z INT NOT NULL DEFAULT 7"\n'
            f'chunk_size = 100\nnice_ratio = 3\ncopy_threads = 1\nautostart = true\n'
            f'throttle_flag_file = "{flag}"\n')


def copied(ckpt) -> int:
    try:
        return json.loads(ckpt.read_text())["copy"]["rows"]
    except (OSError, ValueError, KeyError):
        return 0


def test_sigterm_and_kill_9_of_serve_mid_copy_then_the_migration_continues(sandbox, tmp_path,
                                                                           serve):
    sandbox.sql("node1", f"CREATE DATABASE IF NOT EXISTS {DB}")
    c = db(sandbox)
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, v INT)")
        cur.execute(f"INSERT INTO {TABLE} SELECT seq, seq FROM seq_1_to_{ROWS}")
    state = tmp_path / "state"
    flag = tmp_path / "throttle.flag"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(sandbox, state) + migration_task(flag))
    ckpt = state / "tasks" / "mig" / "checkpoint.json"
    before = 0
    for how in (signal.SIGTERM, signal.SIGKILL):
        proc = serve(cfg)
        wait_for(lambda p=proc, b=before: copied(ckpt) > b + 1000 or p.p.poll() is not None, 300,
                 "the copy under way")
        assert proc.p.poll() is None, "\n".join(proc.err)
        if before:  # the second serve continued after the first one's checkpoint (its line is
            # printed by the service's loop: it may come after the checkpoint moved on)
            wait_for(lambda p=proc: any("mig: resuming: copy after key" in x for x in p.err), 30,
                     "the resumed copy's line")
        with c.cursor() as cur:  # writes the apply must carry across the restarts
            cur.execute(f"UPDATE {TABLE} SET v = -v WHERE id % 97 = 0")
            cur.execute(f"INSERT INTO {TABLE} VALUES ({ROWS + 10 + how}, 1)")
        if how == signal.SIGTERM:
            assert proc.stop(how) == 0, "\n".join(proc.err)
            assert "mig done" in proc.err[-1], proc.err[-1]
        else:
            proc.p.kill()
            proc.p.wait(30)
        at_stop = copied(ckpt)
        assert 0 < at_stop < ROWS, at_stop
        with c.cursor() as cur:
            cur.execute(f"SHOW TABLES LIKE '{TABLE}\\_gho'")
            assert cur.fetchall(), "the ghost table was kept for the next run"
        before = at_stop
    # the third serve continues from the checkpoint and waits for the cut-over
    flag.touch()  # throttled at first: the resumed position is read before it moves on
    proc = serve(cfg)
    wait_for(lambda: api(state) is not None, 120, "the API")
    client = api(state, actor="test")
    wait_for(lambda: client.task("mig")["state"] == "running", 120, "the migration running")
    flag.unlink()
    wait_for(lambda: client.task("mig")["phase"] == "postponed", 600, "the postponed cut-over")
    # it said so: the resumed copy starts after the checkpoint's key, not at zero
    assert any("mig: resuming from the checkpoint of its earlier run" in x for x in proc.err)
    assert any("mig: resuming: copy after key" in x for x in proc.err), "\n".join(proc.err)
    with c.cursor() as cur:
        cur.execute(f"INSERT INTO {TABLE} VALUES ({ROWS + 100}, 5)")
    client.command("mig", "cut-over")
    wait_for(lambda: client.task("mig")["state"] in ("done", "failed"), 300, "the cut-over")
    st = client.task("mig")
    assert st["state"] == "done", st["last_error"]
    assert columns(c, TABLE) == ["id", "v", "z"]
    with c.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), SUM(v), MIN(z), MAX(z) FROM {TABLE}")
        count, total, zmin, zmax = cur.fetchone()
    expect = ROWS + 3
    assert count == expect and zmin == zmax == 7
    # the second UPDATE negated the first one's rows back: the original sum,
    # plus the two rows inserted across the restarts and the one before the cut-over
    want = sum(range(1, ROWS + 1)) + 1 + 1 + 5
    assert total == want, (total, want)
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}_del")
    c.close()
