"""The ad hoc ``relay`` command (run as a subprocess) checks the upstream
before it creates anything: an unreachable host, a wrong password, missing
privileges, a start file/position or GTID the server does not have and a
bad password file are operator errors: one line, exit 2, no relay directory,
and an authentication failure is never retried."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.sandbox import port_free
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration

PASSWORD = "Relay-adhoc-test-9"


def relay(h, tmp_path: Path, *extra: str, user: str = "repl", password_file: Path | None = None,
          port: int | None = None, stop_at_end: bool = True, timeout: float = 120):
    relay_dir = tmp_path / "relay"
    argv = [sys.executable, "-m", "console", "relay", "--host", "127.0.0.1",
            "--port", str(port or h.primary_port), "--user", user,
            "--password-file", str(password_file or h.sb.secret_path("repl")),
            "--relay-dir", str(relay_dir), "--server-id", "5181", "--quiet", *extra]
    if stop_at_end:
        argv.append("--stop-at-end")
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout), relay_dir


def refused(r, relay_dir: Path, *words: str, secrets=()) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    for w in words:
        assert w in lines[0], lines[0]
    assert not relay_dir.exists(), "the relay directory was created"
    for s in secrets:
        assert s not in r.stdout + r.stderr


@pytest.fixture(scope="module")
def accounts(sandbox):
    """Accounts without REPLICATION SLAVE, and with it but nothing else."""
    sandbox.sql("node1",
                "DROP USER IF EXISTS 'relay_norepl'@'%', 'relay_nomon'@'%'",
                f"CREATE USER 'relay_norepl'@'%' IDENTIFIED BY '{PASSWORD}'",
                "GRANT SELECT ON *.* TO 'relay_norepl'@'%'",
                f"CREATE USER 'relay_nomon'@'%' IDENTIFIED BY '{PASSWORD}'",
                "GRANT REPLICATION SLAVE ON *.* TO 'relay_nomon'@'%'")
    yield
    sandbox.sql("node1", "DROP USER IF EXISTS 'relay_norepl'@'%', 'relay_nomon'@'%'")


def access_denied_errors(h) -> int:
    return int(h.sql("node1", "SHOW GLOBAL STATUS LIKE 'Access_denied_errors'")[0][1])


def pwfile(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "pw"
    p.write_text(text)
    p.chmod(0o600)
    return p


def test_unreachable_host(sandbox, tmp_path):
    port = free_port_block(1)
    assert port_free(port)
    r, d = relay(sandbox, tmp_path, port=port)
    refused(r, d, f"127.0.0.1:{port}", "is the server running and the port right?")


@pytest.mark.parametrize("stop_at_end", [True, False], ids=["stop-at-end", "streaming"])
def test_wrong_password_is_not_retried(sandbox, tmp_path, stop_at_end):
    before = access_denied_errors(sandbox)
    r, d = relay(sandbox, tmp_path, password_file=pwfile(tmp_path, "not-the-password\n"),
                 stop_at_end=stop_at_end, timeout=60)
    refused(r, d, "error 1045", "access denied for user 'repl'@", "check --user and --password-file",
            secrets=[sandbox.repl_password])
    assert access_denied_errors(sandbox) - before == 1  # one attempt: no retry


def test_missing_privileges(sandbox, tmp_path, accounts):
    pw = pwfile(tmp_path, PASSWORD)
    r, d = relay(sandbox, tmp_path, user="relay_norepl", password_file=pw)
    refused(r, d, "relay_norepl", "REPLICATION SLAVE", "GRANT", secrets=[PASSWORD])
    r, d = relay(sandbox, tmp_path, user="relay_nomon", password_file=pw)
    refused(r, d, "relay_nomon", "BINLOG MONITOR", "GRANT", secrets=[PASSWORD])


def test_start_the_server_does_not_have(sandbox, tmp_path):
    h = sandbox
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS relayerr",
          "CREATE TABLE IF NOT EXISTS relayerr.t (id INT PRIMARY KEY)", "REPLACE INTO relayerr.t VALUES (1)")
    first, size = h.sql("node1", "SHOW BINARY LOGS")[0][:2]
    pos = h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
    d, s, n = (int(x) for x in pos.split("-"))
    for start, words in [
        (f"gtid:{d}-{s}-{n + 1000}", ["does not have", f"{d}-{s}-{n + 1000}", pos]),
        (f"gtid:{d}-77-{n}", ["does not have", f"{d}-77-{n}"]),
        (f"gtid:{d + 9}-{s}-1", ["does not have", f"{d + 9}-{s}-1"]),
        ("file:mysql-bin.999999:4", ["no binary log mysql-bin.999999", first]),
        (f"file:{first}:{int(size) + 1}", [f"past the end of {first}"]),
        (f"file:{first}:5", [f"5 is not the start of an event in {first}"]),
    ]:
        r, relay_dir = relay(h, tmp_path, "--start-from", start)
        refused(r, relay_dir, "--start-from", *words)
    # what the server has is accepted
    for start in (f"gtid:{pos}", f"file:{first}:4"):
        r, relay_dir = relay(h, tmp_path, "--start-from", start)
        assert r.returncode == 0, (start, r.stderr)
        assert (relay_dir / "relay.meta").exists()
        subprocess.run(["rm", "-rf", str(relay_dir)], check=True)


def test_purged_start(make_sandbox, tmp_path):
    h = make_sandbox(replicas=1)
    h.sql("node1", "CREATE DATABASE p", "CREATE TABLE p.t (id INT PRIMARY KEY)",
          "INSERT INTO p.t VALUES (1)", "FLUSH BINARY LOGS", "INSERT INTO p.t VALUES (2)")
    h.wait_replicas_caught_up()
    logs = [r[0] for r in h.sql("node1", "SHOW BINARY LOGS")]
    h.sql("node1", f"PURGE BINARY LOGS TO '{logs[-1]}'")
    kept = h.sql("node1", f"SELECT BINLOG_GTID_POS('{logs[-1]}', 4)")[0][0]
    d, s, n = (int(x) for x in kept.split("-"))
    r, relay_dir = relay(h, tmp_path, "--start-from", f"gtid:{d}-{s}-{n - 1}")
    refused(r, relay_dir, "purged", kept)
    r, relay_dir = relay(h, tmp_path, "--start-from", f"file:{logs[0]}:4")
    refused(r, relay_dir, f"no binary log {logs[0]}")
    r, relay_dir = relay(h, tmp_path, "--start-from", f"gtid:{kept}")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("kind", ["missing", "empty", "directory"])
def test_bad_password_file(sandbox, tmp_path, kind):
    p = tmp_path / "pw"
    if kind == "empty":
        p.write_text("\n")
    elif kind == "directory":
        p.mkdir()
    r, d = relay(sandbox, tmp_path, password_file=p)
    refused(r, d, "--password-file", str(p),
            {"missing": "No such file", "empty": "is empty", "directory": "Is a directory"}[kind])
