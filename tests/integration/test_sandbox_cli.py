"""`dbops-console sandbox` and `status` as a user runs them, on real mariadbd."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from console.sandbox import pid_alive
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration


def cli(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="module")
def cli_sandbox(tmp_path_factory):
    d = tmp_path_factory.mktemp("clisb")
    port = free_port_block(3)
    r = cli("sandbox", "up", "--dir", str(d), "--base-port", str(port), "--json")
    info = json.loads(r.stdout)
    yield d, port, info
    cli("sandbox", "down", "--dir", str(d), check=False)


def status(config):
    return json.loads(cli("status", "--config", config, "--json").stdout)["clusters"]["sandbox"]


def test_up_json_has_ports_pids_and_config(cli_sandbox):
    d, port, info = cli_sandbox
    assert info["ports"] == [port, port + 1, port + 2]
    assert all(pid_alive(p) for p in info["pids"])
    assert info["config"] == str(d / "dbops.toml") and os.path.exists(info["config"])
    text = open(info["config"]).read()
    pw = (d / "secrets" / "dbops.password").read_text().strip()
    assert pw not in text  # the config points at the password file
    for pid in info["pids"]:  # and no password in any process argument
        assert pw not in open(f"/proc/{pid}/cmdline").read()


def test_status_roles_and_gtid_advance(cli_sandbox):
    d, port, info = cli_sandbox
    s = status(info["config"])
    roles = sorted(h["role"] for h in s["hosts"])
    assert roles == ["primary", "replica", "replica"]
    prim = next(h for h in s["hosts"] if h["role"] == "primary")
    assert prim["address"] == f"127.0.0.1:{port}" and prim["read_only"] is False
    for h in s["hosts"]:
        if h["role"] == "replica":
            assert h["read_only"] is True and h["io_thread"] == "Yes" and h["sql_thread"] == "Yes"
            assert h["upstream"] == prim["address"]
    before = {h["address"]: h["gtid_current_pos"] for h in s["hosts"]}
    import pymysql

    pw = (d / "secrets" / "dbops.password").read_text().strip()
    c = pymysql.connect(host="127.0.0.1", port=port, user="dbops", password=pw, autocommit=True)
    with c.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS t1")
        cur.execute("CREATE TABLE IF NOT EXISTS t1.x (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
        for i in range(5):
            cur.execute("INSERT INTO t1.x (v) VALUES (%s)", (i,))
        cur.execute("SELECT @@gtid_binlog_pos")
        target = cur.fetchone()[0]
    c.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        s = status(info["config"])
        if all(h["gtid_current_pos"] == target for h in s["hosts"]):
            break
        time.sleep(0.2)
    after = {h["address"]: h["gtid_current_pos"] for h in s["hosts"]}
    assert all(after[a] == target for a in after), after
    assert all(after[a] != before[a] for a in after)


def test_up_twice_reuses(cli_sandbox):
    d, port, info = cli_sandbox
    again = json.loads(cli("sandbox", "up", "--dir", str(d), "--base-port", str(port), "--json").stdout)
    assert again["pids"] == info["pids"]


def test_taken_port_is_one_clear_line(tmp_path):
    port = free_port_block(3)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port + 1))
    s.listen()
    try:
        r = cli("sandbox", "up", "--dir", str(tmp_path / "x"), "--base-port", str(port), check=False)
    finally:
        s.close()
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and f"port {port + 1}" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_mariadbd_names_the_package(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # nothing on PATH, and no sbin fallback hit
    code = ("import console.sandbox as s; s.which = lambda *a: None; "
            "from console.cli import main; import sys; "
            f"sys.exit(main(['sandbox','up','--dir',{str(tmp_path / 'y')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "apt-get install -y mariadb-server" in r.stderr and "Traceback" not in r.stderr


def test_down_leaves_no_process(tmp_path):
    port = free_port_block(2)
    d = tmp_path / "downsb"
    info = json.loads(cli("sandbox", "up", "--dir", str(d), "--base-port", str(port),
                          "--replicas", "1", "--json").stdout)
    pids = info["pids"]
    assert all(pid_alive(p) for p in pids)
    out = json.loads(cli("sandbox", "down", "--dir", str(d), "--json").stdout)
    assert sorted(out["stopped"]) == ["node1", "node2"]
    assert not any(pid_alive(p) for p in pids)
    st = json.loads(cli("sandbox", "status", "--dir", str(d), "--json", check=False).stdout)
    assert not any(n["running"] for n in st["nodes"])
