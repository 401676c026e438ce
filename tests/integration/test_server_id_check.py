"""A relay or backup task whose server_id is a server's own (issue 12, item 19).

MariaDB lets only one dump connection per server_id: a relay using a
replica's server_id and that replica's IO thread kick each other out with
error 4052 forever.  The ids are only known from the servers, so the task
refuses to start after asking every host of its cluster; and a 4052 that
still happens (a server outside the config) ends the task instead of
retrying it forever."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from console.config import load_config
from console.engine.engine import Engine
from console.engine.relay.store import RelayStore
from console.errors import UserError
from tests.integration.relay_support import start_relay

pytestmark = pytest.mark.integration


def config_with_tasks(h, tmp_path, relay_sid: int, backup_sid: int):
    text = h.config_path.read_text().replace('state_dir = ', '# state_dir = ', 1)
    text = f'state_dir = "{tmp_path / "state"}"\n' + text + f"""
[tasks.dup-relay]
kind = "relay"
cluster = "sandbox"
relay_dir = "{tmp_path / "relay"}"
server_id = {relay_sid}

[tasks.dup-backup]
kind = "backup"
cluster = "sandbox"
storage = "{tmp_path / "backup"}"
server_id = {backup_sid}
"""
    p = tmp_path / "dbops.toml"
    p.write_text(text)
    return p


def server_id(h, node: str) -> int:
    return int(h.sql(node, "SELECT @@server_id")[0][0])


def test_task_with_a_servers_server_id_is_refused_at_start(sandbox, tmp_path):
    h = sandbox
    replica_sid, primary_sid = server_id(h, "node2"), server_id(h, "node1")
    cfg = load_config(config_with_tasks(h, tmp_path, replica_sid, primary_sid))
    engine = Engine(cfg)
    try:
        for name, sid, node in (("dup-relay", replica_sid, "node2"), ("dup-backup", primary_sid, "node1")):
            task = engine.create_configured(name)
            with pytest.raises(UserError) as e:
                engine.start(name)
            msg = str(e.value)
            assert f"server_id {sid}" in msg and node in msg and f"tasks.{name}.server_id" in msg, msg
            assert "\n" not in msg
            st = task.status()
            assert st.state == "failed" and st.last_error == msg  # shown as failed, with the reason
        assert RelayStore(tmp_path / "relay").load_meta() is None  # nothing relayed
        assert not list((tmp_path / "relay").glob("*/*.0*"))
        # the replicas still replicate (nobody was kicked out)
        for node in ("node2", "node3"):
            row = h.sql(node, "SHOW SLAVE STATUS")[0]
            assert row[10] == "Yes" and row[11] == "Yes", row[:12]
    finally:
        engine.shutdown()


def test_relay_cli_refuses_a_replicas_server_id_exit_2(sandbox, tmp_path):
    h = sandbox
    sid = server_id(h, "node3")
    p = config_with_tasks(h, tmp_path, sid, 4243)
    r = subprocess.run([sys.executable, "-m", "console", "relay", "--config", str(p), "--task", "dup-relay"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"server_id {sid}" in lines[0] and "node3" in lines[0]
    assert RelayStore(tmp_path / "relay").load_meta() is None


def test_dump_kicked_out_by_a_replica_with_our_server_id_is_not_retried_forever(make_sandbox, tmp_path):
    """A server_id clash the start check cannot see (started without the
    engine's check, like a server outside the config): error 4052 ends the
    task with one clear line instead of an endless reconnect loop."""
    h = make_sandbox(replicas=1)
    sid = server_id(h, "node2")
    task = start_relay(h, tmp_path / "relay", server_id=sid)  # bypasses Engine.start on purpose
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not task.status().detail.connected:
            time.sleep(0.1)
        assert task.status().detail.connected
        # the replica's IO thread registers with the same server_id: the server
        # kills the older dump connection of that id (and the replica's in turn)
        h.sql("node2", "STOP SLAVE", "START SLAVE")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and task.state != "failed":
            time.sleep(0.1)
        st = task.status()
        assert st.state == "failed", (st.state, st.phase, st.last_error)
        assert "4052" in st.last_error and f"server_id {sid}" in st.last_error, st.last_error
    finally:
        task.stop(wait=10)
