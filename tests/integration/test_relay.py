"""Relay task against real mariadbd: byte-identical files, crash safety,
upstream restart, switch-master after a promotion, events over 16 MiB."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.engine.relay.reader import RelayReader
from console.engine.relay.store import RelayStore
from console.errors import CommandError, ConfirmationRequired
from tests.integration.relay_support import (
    Load,
    compare_with_upstream,
    gtid_pos,
    mariadb_binlog_text,
    start_relay,
    upstream_gtids,
    wait_meta_gtid,
)
from tests.support.sandboxes import SandboxHandle

pytestmark = pytest.mark.integration


def datadir(h, node="node1") -> Path:
    return Path(next(n.datadir for n in h.nodes if n.name == node))


def active_binlog(h, node="node1") -> str:
    return h.sql(node, "SHOW MASTER STATUS")[0][0]


def only_subdir(relay_dir: Path) -> Path:
    subs = RelayStore(relay_dir).subdirs()
    assert len(subs) == 1, subs
    return relay_dir / subs[0]


def test_relay_files_identical_and_readable(sandbox, tmp_path):
    h = sandbox
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS relaytest",
          "CREATE TABLE IF NOT EXISTS relaytest.t (id INT PRIMARY KEY, v TEXT)",
          "INSERT INTO relaytest.t VALUES (1, 'a'), (2, 'b')",
          "FLUSH BINARY LOGS",
          "BEGIN", "UPDATE relaytest.t SET v = 'c' WHERE id = 1", "DELETE FROM relaytest.t WHERE id = 2",
          "COMMIT",
          "ALTER TABLE relaytest.t ADD COLUMN w INT")
    relay_dir = tmp_path / "relay"
    task = start_relay(h, relay_dir)
    try:
        wait_meta_gtid(relay_dir, gtid_pos(h))
        h.sql("node1", "INSERT INTO relaytest.t VALUES (3, 'live', 1)")  # while streaming
        wait_meta_gtid(relay_dir, gtid_pos(h))
        deadline = time.monotonic() + 10
        while not task.status().detail.caught_up and time.monotonic() < deadline:
            time.sleep(0.1)
        d = task.status().detail
        assert d.caught_up and d.bytes_behind == 0 and d.seconds_behind == 0.0
        assert d.relayed_gtid == gtid_pos(h) and d.retries == 0 and task.state == "running"
        assert d.total_events > 10 and d.relay_files >= 2
        # pause closes the stream; resume continues where the meta is
        task.engine.command(task.task_id, "pause")
        h.sql("node1", "INSERT INTO relaytest.t VALUES (4, 'paused', 1)")
        time.sleep(0.5)
        assert task.state == "paused" and not task.status().detail.connected
        assert task.meta.gtid != gtid_pos(h)
        task.engine.command(task.task_id, "resume")
        wait_meta_gtid(relay_dir, gtid_pos(h))
    finally:
        task.stop()
    assert task.state == "done"
    sub = only_subdir(relay_dir)
    names = compare_with_upstream(sub, datadir(h), active_binlog(h))
    assert len(names) >= 2
    for n in names:  # mariadb-binlog reads our files and prints the same as for the upstream's
        assert mariadb_binlog_text(sub / n) == mariadb_binlog_text(datadir(h) / n)
    # reader API: every transaction once, in the server's order
    got = [e.gtid for e in RelayReader(relay_dir).events(gtid="") if e.gtid]
    assert got == upstream_gtids(h, "node1")
    tail = [e for e in RelayReader(relay_dir).events(gtid=got[-3]) if e.gtid]
    assert [e.gtid for e in tail] == got[-2:] and tail[-1].position == gtid_pos(h)
    # purge: dangerous (typed confirmation), keeps pinned and current files
    store = RelayStore(relay_dir)
    with pytest.raises(ConfirmationRequired):
        task.engine.command(task.task_id, "purge", all_old=True)
    store.pin("backup-test", sub.name, names[1])
    task.engine.command(task.task_id, "purge", all_old=True, confirm=task.task_id)
    left = [f.name for f in store.all_files()]
    assert left == names[1:]
    store.unpin("backup-test")
    task.engine.command(task.task_id, "purge", all_old=True, confirm=task.task_id)
    assert [f.name for f in store.all_files()] == [store.load_meta().file]


def test_event_over_16mib_headless_stop_at_end(sandbox, tmp_path):
    h = sandbox
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS relaytest",
          "CREATE TABLE IF NOT EXISTS relaytest.big (id INT PRIMARY KEY, b LONGBLOB)",
          "INSERT INTO relaytest.big VALUES (1, CONCAT('relaytest-big-row', REPEAT('z', 20 * 1024 * 1024)))")
    relay_dir = tmp_path / "relay"
    r = subprocess.run([sys.executable, "-m", "console", "relay", "--host", "127.0.0.1",
                        "--port", str(h.primary_port), "--user", "repl", "--password-file",
                        str(h.sb.secret_path("repl")), "--relay-dir", str(relay_dir),
                        "--server-id", "5102", "--stop-at-end", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert h.repl_password not in r.stdout + r.stderr
    sub = only_subdir(relay_dir)
    compare_with_upstream(sub, datadir(h), active_binlog(h))
    # this test's 20 MiB row, by its marker (other modules write big rows into the shared sandbox too)
    big = [e for e in RelayReader(relay_dir).events(gtid="")
           if len(e.data) > 20 * 1024 * 1024 and b"relaytest-big-row" in bytes(e.data)]
    assert len(big) == 1 and big[0].type_name == "type23"  # WRITE_ROWS_EVENT_V1
    assert bytes(big[0].data).count(b"z" * 4096) >= 5000
    assert RelayStore(relay_dir).load_meta().gtid == gtid_pos(h)


def test_kill9_under_load_then_identical(sandbox):
    """The configured sandbox-relay task, headless, killed -9 ten times under load."""
    h = sandbox
    relay_dir = h.sb.dir / "relay"
    cmd = [sys.executable, "-m", "console", "relay", "--config", str(h.config_path),
           "--task", "sandbox-relay", "--quiet"]
    rng = random.Random(1234)
    kills = 0
    with Load(h):
        for _ in range(10):
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.3, 1.5))
            assert p.poll() is None, p.stderr.read().decode()
            p.kill()
            p.wait()
            kills += 1
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
    try:
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 128 + signal.SIGTERM, p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
    assert kills == 10
    meta = RelayStore(relay_dir).load_meta()
    assert meta.gtid == gtid_pos(h)
    sub = only_subdir(relay_dir)
    assert (sub / meta.file).stat().st_size == meta.relay_pos  # clean stop: nothing past the meta
    compare_with_upstream(sub, datadir(h), active_binlog(h))
    got = [e.gtid for e in RelayReader(relay_dir).events(gtid="") if e.gtid]
    assert got == upstream_gtids(h, "node1")


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    h = SandboxHandle(tmp_path_factory.mktemp("relay-topology"), replicas=2)
    yield h
    h.stop()


def test_read_watchdog_reconnects_a_frozen_upstream(private, tmp_path):
    """SIGSTOP the upstream: no heartbeat arrives, the watchdog (3 x 0.5 s + 1,
    at least 3 s) drops the connection; after SIGCONT the relay reconnects."""
    h = private
    relay_dir = tmp_path / "relay"
    task = start_relay(h, relay_dir, heartbeat=0.5)
    pid = next(n.pid for n in h.nodes if n.name == "node1")
    try:
        h.sql("node1", "CREATE DATABASE IF NOT EXISTS relaytest",
              "CREATE TABLE IF NOT EXISTS relaytest.w (id INT PRIMARY KEY)")
        wait_meta_gtid(relay_dir, gtid_pos(h))     # streaming now
        os.kill(pid, signal.SIGSTOP)

        def warnings():
            return " | ".join(e.outcome for _, e in task.engine.events_since(0) if e.action == "warn")

        try:
            deadline = time.monotonic() + 20
            while "read watchdog" not in warnings() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert "no event or heartbeat for 3s (read watchdog)" in warnings()
        assert task.status().detail.retries >= 1
        h.sql("node1", "INSERT INTO relaytest.w VALUES (1)")
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
        assert task.state == "running"
    finally:
        task.stop()
    compare_with_upstream(only_subdir(relay_dir), datadir(h), active_binlog(h))


def test_upstream_restart_survived(private, tmp_path):
    h = private
    relay_dir = tmp_path / "relay"
    task = start_relay(h, relay_dir)
    try:
        h.sql("node1", "CREATE DATABASE IF NOT EXISTS relaytest",
              "CREATE TABLE IF NOT EXISTS relaytest.r (id INT PRIMARY KEY)", "INSERT INTO relaytest.r VALUES (1)")
        wait_meta_gtid(relay_dir, gtid_pos(h))
        h.sb.stop_node("node1")
        time.sleep(1.0)
        h.sb.start_node("node1")
        h.sql("node1", "INSERT INTO relaytest.r VALUES (2)")
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
        assert task.status().detail.retries >= 1 and task.state == "running"
    finally:
        task.stop()
    sub = only_subdir(relay_dir)
    compare_with_upstream(sub, datadir(h), active_binlog(h))
    got = [e.gtid for e in RelayReader(relay_dir).events(gtid="") if e.gtid]
    assert got == upstream_gtids(h, "node1")


def test_switch_master_after_promotion(private, tmp_path):
    h = private
    relay_dir = tmp_path / "relay"
    Load(h, table="relaytest.s")  # creates the table
    h.wait_replicas_caught_up()
    h.sql("node3", "STOP SLAVE")             # node3 will lack the last transactions
    task = start_relay(h, relay_dir)
    try:
        with Load(h, table="relaytest.s", flush_every=0.7):
            time.sleep(2.0)
        wait_meta_gtid(relay_dir, gtid_pos(h))
        last = gtid_pos(h)
        assert h.sql("node2", f"SELECT MASTER_GTID_WAIT('{last}', 30)")[0][0] == 0
        h.sb.stop_node("node1", signal.SIGKILL)     # the primary dies
        h.sql("node2", "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF")  # promotion
        with pytest.raises(CommandError, match="lacks relayed transactions"):
            task.engine.command(task.task_id, "switch-master", target="node3", confirm=task.task_id)
        task.engine.command(task.task_id, "switch-master", target="node2", confirm=task.task_id)
        with Load(h, node="node2", table="relaytest.s", flush_every=0.7):
            time.sleep(2.0)
        wait_meta_gtid(relay_dir, gtid_pos(h, "node2"), timeout=60)
        d = task.status().detail
        assert task.state == "running" and d.upstream.startswith("node2")
        # a restart with the old config (node1, dead) follows relay.meta to node2
        task.stop()
        task = start_relay(h, relay_dir, node="node1")
        h.sql("node2", "INSERT INTO relaytest.s (v, n) VALUES ('after restart', 1)")
        wait_meta_gtid(relay_dir, gtid_pos(h, "node2"), timeout=60)
        assert task.status().detail.upstream.startswith("node2") and task.state == "running"
    finally:
        task.stop()
        h.sb.start_node("node1")
    subs = RelayStore(relay_dir).subdirs()
    assert len(subs) == 2 and subs[1].endswith(".000002") and subs[0] != subs[1]
    got = [e.gtid for e in RelayReader(relay_dir).events(gtid="") if e.gtid]
    assert len(got) == len(set(got))                              # no duplicate
    assert got == upstream_gtids(h, "node2")                      # no gap, same order
    seqs = [int(g.split("-")[2]) for g in got]
    assert seqs == list(range(1, len(seqs) + 1))
    for f in sorted((relay_dir / subs[1]).iterdir()):             # new subdir readable too
        mariadb_binlog_text(f)
    audit = (relay_dir / ".state" / "audit.log").read_text()
    assert "switch-master" in audit and "refused" in audit
    assert os.path.exists(relay_dir / "server-uuid.index")


@pytest.mark.parametrize("how", ["gtid", "file"])
def test_fresh_start_from_gtid_or_file_position(sandbox, tmp_path, how):
    h = sandbox
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS relaytest",
          "CREATE TABLE IF NOT EXISTS relaytest.f (id INT AUTO_INCREMENT PRIMARY KEY)",
          "INSERT INTO relaytest.f VALUES ()")
    start_gtid = gtid_pos(h)
    file, pos = h.sql("node1", "SHOW MASTER STATUS")[0][:2]
    h.sql("node1", "INSERT INTO relaytest.f VALUES ()", "INSERT INTO relaytest.f VALUES ()")
    start = f"gtid:{start_gtid}" if how == "gtid" else f"file:{file}:{pos}"
    task = start_relay(h, tmp_path / "relay", start_from=start, stop_at_end=True)
    assert task.join(30) and task.state == "done", task.status().last_error
    got = [e.gtid for e in RelayReader(tmp_path / "relay").events(gtid=start_gtid) if e.gtid]
    assert got == upstream_gtids(h, "node1")[-2:]
    # nothing before the start was fetched at all
    assert [e.gtid for e in RelayReader(tmp_path / "relay").events(gtid="") if e.gtid] == got
    sub = only_subdir(tmp_path / "relay")
    for f in sub.iterdir():
        mariadb_binlog_text(f)


def test_semi_sync_ack(sandbox, tmp_path):
    """The primary waits for the relay's ACK (sent after fsync): commits count
    as semi-synchronous, none falls back to async."""
    h = sandbox

    def status(name):
        return int(h.sql("node1", f"SHOW GLOBAL STATUS LIKE '{name}'")[0][1])

    h.sql("node1", "SET GLOBAL rpl_semi_sync_master_timeout = 10000",
          "SET GLOBAL rpl_semi_sync_master_enabled = ON")
    task = start_relay(h, tmp_path / "relay", start_from="now", semi_sync=True, server_id=5103)
    try:
        deadline = time.monotonic() + 20
        while status("Rpl_semi_sync_master_clients") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status("Rpl_semi_sync_master_clients") == 1
        yes, no = status("Rpl_semi_sync_master_yes_tx"), status("Rpl_semi_sync_master_no_tx")
        h.sql("node1", "CREATE DATABASE IF NOT EXISTS relaytest",
              "CREATE TABLE IF NOT EXISTS relaytest.semi (id INT AUTO_INCREMENT PRIMARY KEY)")
        for _ in range(3):
            h.sql("node1", "INSERT INTO relaytest.semi VALUES ()")
        assert status("Rpl_semi_sync_master_yes_tx") - yes >= 5
        assert status("Rpl_semi_sync_master_no_tx") == no
        d = task.status().detail
        assert d.semi_sync == "on" and d.acks >= 5
        assert RelayStore(tmp_path / "relay").load_meta().gtid == gtid_pos(h)  # durable before ACK
    finally:
        h.sql("node1", "SET GLOBAL rpl_semi_sync_master_enabled = OFF")
        task.stop()


def test_forced_switch_to_an_upstream_that_lacks_transactions(private, tmp_path):
    """After the promotion above node2 is the primary and node3 (replication
    stopped) lacks its latest transactions: refused without force, accepted
    with it; the new subdirectory continues from node3's own position."""
    h = private
    relay_dir = tmp_path / "relay"
    task = start_relay(h, relay_dir, node="node2", server_id=5104)
    try:
        wait_meta_gtid(relay_dir, gtid_pos(h, "node2"))
        with pytest.raises(CommandError, match="lacks relayed transactions"):
            task.engine.command(task.task_id, "switch-master", target="node3", confirm=task.task_id)
        task.engine.command(task.task_id, "switch-master", target="node3", force=True,
                            confirm=task.task_id)
        h.sql("node3", "INSERT INTO relaytest.s (v, n) VALUES ('on node3', 1)")
        # node3's seq numbers are below what the relay has: wait for its exact position
        want = gtid_pos(h, "node3")
        deadline = time.monotonic() + 30
        while RelayStore(relay_dir).load_meta().gtid != want and time.monotonic() < deadline:
            time.sleep(0.05)
        assert task.state == "running" and len(RelayStore(relay_dir).subdirs()) == 2
    finally:
        task.stop()
    assert RelayStore(relay_dir).load_meta().gtid == gtid_pos(h, "node3")


def test_upstream_without_checksums(sandbox, tmp_path):
    """binlog_checksum = NONE upstream: events carry no CRC32; files still identical."""
    h = sandbox
    try:
        h.sql("node1", "SET GLOBAL binlog_checksum = NONE")   # rotates to a new binlog
        file = active_binlog(h)
        h.sql("node1", "CREATE DATABASE IF NOT EXISTS relaytest",
              "CREATE TABLE IF NOT EXISTS relaytest.nocrc (id INT PRIMARY KEY)",
              "INSERT INTO relaytest.nocrc VALUES (1)", "FLUSH BINARY LOGS",
              "INSERT INTO relaytest.nocrc VALUES (2)",
              "SET GLOBAL binlog_checksum = CRC32",     # the relay crosses back to CRC32 files
              "INSERT INTO relaytest.nocrc VALUES (3)")
        task = start_relay(h, tmp_path / "relay", start_from=f"file:{file}:4", stop_at_end=True)
        assert task.join(30) and task.state == "done", task.status().last_error
    finally:  # (setting it rotates the binlog: only when the test stopped half-way)
        if h.sql("node1", "SELECT @@global.binlog_checksum")[0][0] != "CRC32":
            h.sql("node1", "SET GLOBAL binlog_checksum = CRC32")
    sub = only_subdir(tmp_path / "relay")
    names = compare_with_upstream(sub, datadir(h), active_binlog(h))
    assert names[0] == file and len(names) == 3
    got = [e.gtid for e in RelayReader(tmp_path / "relay").events(gtid="") if e.gtid]
    assert got and got[-1] == [g for g in upstream_gtids(h, "node1")][-1]
