"""A migration in a shared fleet (issue 17: "another engine takes the task
over from the stored checkpoint"): engine 1's file declares it, engine 2
adopts its definition; kill -9 of engine 1 mid-copy, and engine 2 takes it
over from the checkpoint engine 1 published to etcd (not from zero), with
writes between, and completes it: every row, every write, the new column;
the fleet's checkpoint then says complete (nothing left to resume)."""

from __future__ import annotations

import signal

import pytest

from tests.integration.migration_helpers import DB, columns
from tests.integration.migration_helpers import connect as db
from tests.support.backup_helpers import wait_for
from tests.support.etcd import etcd  # noqa: F401 - the fixture
from tests.support.fleet import TTL, engine_id, reader_of
from tests.support.serving import cluster_part

pytestmark = pytest.mark.integration

TABLE = "fleetmig"
ROWS = 30000


def migration_task() -> str:
    return (f'\n[tasks.mig]\nkind = "migration"\ncluster = "sandbox"\ndatabase = "{DB}"\n'
            f'table = "{TABLE}"\nalter = "ADD COLUMN z INT NOT NULL DEFAULT 7"\n'
            f'chunk_size = 100\nnice_ratio = 3\ncopy_threads = 1\npostpone_cut_over = false\nautostart = true\n')


def test_a_migration_is_taken_over_by_another_engine_from_its_published_checkpoint(
        sandbox, tmp_path, serve, etcd):  # noqa: F811 - the fixture
    sandbox.sql("node1", f"CREATE DATABASE IF NOT EXISTS {DB}")
    c = db(sandbox)
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        for t in ("_gho", "_ghc", "_del"):
            cur.execute(f"DROP TABLE IF EXISTS {TABLE}{t}")
        cur.execute(f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, v INT)")
        cur.execute(f"INSERT INTO {TABLE} SELECT seq, seq FROM seq_1_to_{ROWS}")
    reader = reader_of(etcd)
    cfg1, cfg2 = tmp_path / "engine1.toml", tmp_path / "engine2.toml"
    cfg1.write_text(cluster_part(sandbox, tmp_path / "state1") + migration_task())
    cfg2.write_text(cluster_part(sandbox, tmp_path / "state2"))

    def published() -> dict:
        return ((reader.checkpoint("mig", "migration") or {}).get("value")) or {}

    def state_of() -> tuple[str, str]:
        reader.refresh()
        st = reader.fleet().get("mig") or {}
        return st.get("state", ""), st.get("engine", "")

    e1 = serve(cfg1, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
    id1 = engine_id(e1)
    wait_for(lambda: state_of() == ("running", id1), 120, "the migration running on engine 1")
    e2 = serve(cfg2, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
    id2 = engine_id(e2)
    wait_for(lambda: any("task mig: declared by another engine of the fleet, adopted" in x for x in e2.err),
             60, "engine 2 adopts the migration")
    wait_for(lambda: published().get("rows", 0) > 3000, 300, "the copy under way on engine 1")
    with c.cursor() as cur:  # writes the apply must carry across the take-over
        cur.execute(f"UPDATE {TABLE} SET v = -v WHERE id % 97 = 0")
        cur.execute(f"INSERT INTO {TABLE} VALUES ({ROWS + 1}, 11)")
    e1.p.kill()
    assert e1.p.wait(30) == -signal.SIGKILL
    at_kill = published()
    assert 0 < at_kill["rows"] < ROWS and at_kill.get("record"), at_kill
    with c.cursor() as cur:
        cur.execute(f"INSERT INTO {TABLE} VALUES ({ROWS + 2}, 13)")
    wait_for(lambda: state_of()[1] == id2, 4 * TTL + 30, "the migration taken over by engine 2")
    wait_for(lambda: state_of()[0] in ("done", "failed"), 600, "the migration ended on engine 2")
    assert state_of() == ("done", id2), "\n".join(e2.err[-30:])
    assert any(f"mig: taken over in the fleet: resuming the run of engine {id1}" in x for x in e2.err), e2.err
    resumed = [x for x in e2.err if "mig: resuming: copy after key" in x]
    assert resumed, "\n".join(e2.err)
    assert published().get("complete") is True
    assert columns(c, TABLE) == ["id", "v", "z"]
    with c.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), SUM(v), MIN(z), MAX(z) FROM {TABLE}")
        count, total, zmin, zmax = cur.fetchone()
        negated = sum(i for i in range(97, ROWS + 1, 97))
    assert count == ROWS + 2 and zmin == zmax == 7
    assert total == sum(range(1, ROWS + 1)) - 2 * negated + 11 + 13, total
    e2.p.send_signal(signal.SIGTERM)
    assert e2.p.wait(60) == 0, e2.err
    assert not any("Traceback" in x for x in e1.err + e2.err)
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}_del")
    c.close()
