"""The ad hoc ``relay`` command and the upstream it is given (issue 12
review, items 2a and 2c), run as a subprocess against the real sandbox.

* A ``--host`` that is not the server the relay directory follows (its
  relay.meta) is refused: one line naming the upstream the directory
  follows and how to go on, exit 2, nothing written; the same server under
  another address is no conflict; ``--switch-master`` switches, says so in a
  line, and continues by GTID with no gap and no duplicate.
* A ``--server-id`` that is the upstream's or a replica's (registered with
  the upstream: SHOW SLAVE HOSTS) is refused before anything is created,
  and the replica is not kicked out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.engine.relay.reader import RelayReader
from console.engine.relay.store import RelayStore
from tests.integration.relay_support import gtid_pos

pytestmark = pytest.mark.integration


def relay(h, relay_dir: Path, node: str, *extra: str, host: str = "127.0.0.1", user: str = "repl",
          server_id: int = 5241):
    argv = [sys.executable, "-m", "console", "relay", "--host", host, "--port", str(h.port(node)),
            "--user", user, "--password-file", str(h.sb.secret_path(user if user == "repl" else "dbops")),
            "--relay-dir", str(relay_dir), "--server-id", str(server_id), "--stop-at-end", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180)


def one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    return lines[0]


def relayed_gtids(relay_dir: Path, after: str) -> list[str]:
    return [e.gtid for e in RelayReader(relay_dir).events(gtid=after) if e.gtid]


def test_explicit_host_that_is_not_the_relay_directorys_upstream(sandbox, tmp_path):
    h = sandbox
    relay_dir = tmp_path / "relay"
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS adhoc_up",
          "CREATE TABLE IF NOT EXISTS adhoc_up.t (id INT PRIMARY KEY AUTO_INCREMENT)")
    start = gtid_pos(h)
    r = relay(h, relay_dir, "node1", "--start-from", "now")
    assert r.returncode == 0, r.stderr
    h.sql("node1", "INSERT INTO adhoc_up.t VALUES ()", "INSERT INTO adhoc_up.t VALUES ()")
    assert relay(h, relay_dir, "node1").returncode == 0
    meta = RelayStore(relay_dir).load_meta()
    p1, p2 = h.port("node1"), h.port("node2")
    assert meta.server == f"127.0.0.1:{p1}" and meta.gtid == gtid_pos(h)

    r = relay(h, relay_dir, "node2")
    line = one_line(r)
    assert f"relay directory {relay_dir} follows 127.0.0.1:{p1}" in line, line
    assert f"--host 127.0.0.1 --port {p1}" in line and "--switch-master" in line, line
    assert RelayStore(relay_dir).load_meta() == meta  # nothing written

    # the same server under another address is no conflict
    r = relay(h, relay_dir, "node1", host="localhost")
    assert r.returncode == 0, r.stderr

    # --switch-master: the switch is said, and the relay continues by GTID on node2
    h.sql("node1", "INSERT INTO adhoc_up.t VALUES ()")
    h.wait_replicas_caught_up()
    r = relay(h, relay_dir, "node2", "--switch-master")
    assert r.returncode == 0, r.stderr
    assert f"relay: switching relay directory {relay_dir} from localhost:{p1} to 127.0.0.1:{p2}" \
        in r.stderr, r.stderr
    meta = RelayStore(relay_dir).load_meta()
    assert meta.server == f"127.0.0.1:{p2}" and len(RelayStore(relay_dir).subdirs()) == 2
    # every transaction after the start once, across both subdirectories (the
    # reader starts in the first one: the second begins after the switch)
    got = relayed_gtids(relay_dir, start)
    end = int(gtid_pos(h).split("-")[-1])
    first = int(start.split("-")[-1]) + 1 if start else 1
    assert [int(g.split("-")[-1]) for g in got] == list(range(first, end + 1))  # no gap, no duplicate


def server_id(h, node: str) -> int:
    return int(h.sql(node, "SELECT @@server_id")[0][0])


@pytest.mark.parametrize("node", ["node1", "node2"], ids=["upstream", "replica"])
def test_adhoc_server_id_of_the_upstream_or_a_replica(sandbox, tmp_path, node):
    """The dbops account may list the upstream's replicas (SHOW SLAVE HOSTS
    needs REPLICATION MASTER ADMIN); the relay reads node1."""
    h = sandbox
    relay_dir = tmp_path / "relay"
    sid = server_id(h, node)
    r = relay(h, relay_dir, "node1", user="dbops", server_id=sid)
    line = one_line(r)
    assert f"server_id {sid} is the server_id of" in line and f"127.0.0.1:{h.port(node)}" in line, line
    assert "--server-id" in line and "error 4052" in line, line
    assert not relay_dir.exists()
    row = h.sql("node2", "SHOW SLAVE STATUS")[0]
    assert row[10] == "Yes" and row[11] == "Yes", row[:12]
