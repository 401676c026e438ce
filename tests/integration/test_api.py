"""The engine's HTTP API against the real sandbox: ``serve --listen`` as a
subprocess, every endpoint through the unix socket and TCP, the token
(401 and nothing changed without it), a dangerous command refused without
its confirm target, declaring and removing a task in the config file
(comments kept, every problem refused with nothing written), two clients
declaring at once, the audit log followed and the live snapshot stream."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
from pathlib import Path

import pytest

from console.api.client import ApiError, EngineClient, connect
from console.api.sockets import socket_path
from console.errors import ConfirmationRequired
from tests.support.backup_helpers import wait_for
from tests.support.serving import cluster_part, relay_task

pytestmark = pytest.mark.integration


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_request(port: int, method: str, path: str, token: str | None = None,
                body: dict | None = None) -> tuple[int, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    c.request(method, path, body=json.dumps(body).encode() if body is not None else None,
              headers=headers)
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r.status, json.loads(raw) if raw else {}


def audit_lines(state: Path) -> list[str]:
    p = state / "audit.log"
    return p.read_text().splitlines() if p.exists() else []


@pytest.fixture
def served(sandbox, tmp_path, serve):
    """serve with one relay (not autostarted), a comment in its config, and
    TCP on a free port; yields (client, port, state, config, cli)."""
    state = tmp_path / "state"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text("# operator's comment: keep me\n" + cluster_part(sandbox, state)
                   + relay_task("r1", tmp_path / "r1", 6101, autostart=False))
    port = free_tcp_port()
    cli = serve(cfg, None, "--listen", f"127.0.0.1:{port}")
    wait_for(lambda: connect(state) is not None or cli.p.poll() is not None, timeout=120,
             what="the API socket")
    assert cli.p.poll() is None, "\n".join(cli.err)
    client = connect(state, actor="test")
    wait_for(lambda: client.clusters()["sandbox"]["taken_at"] is not None, timeout=60,
             what="the monitor's first snapshot")
    yield client, port, state, cfg, cli
    if cli.p.poll() is None:
        assert cli.stop(signal.SIGTERM) == 0, "\n".join(cli.err)


def test_read_endpoints(served, sandbox):
    client, _, state, cfg, _ = served
    info = client.info()
    assert info["state_dir"] == str(state) and info["config"] == str(cfg)
    clusters = client.clusters()
    hosts = {h["name"]: h for h in clusters["sandbox"]["hosts"]}
    assert set(hosts) == {"node1", "node2", "node3"}
    assert hosts["node1"]["role"] == "primary" and clusters["sandbox"]["primary"].endswith(
        str(sandbox.port("node1")))
    assert client.get("/api/v1/clusters/sandbox")["cluster"] == "sandbox"
    assert client.get("/api/v1/clusters/sandbox/hosts/node2")["role"] == "replica"
    tasks = {t["task_id"]: t for t in client.tasks()}
    assert tasks["r1"]["state"] == "not started" and tasks["r1"]["declared"]
    assert "monitor:sandbox" in {t["task_id"] for t in client.tasks(monitors=True)}
    assert client.task("monitor:sandbox")["state"] == "running"
    for path, status in (("/api/v1/clusters/nope", 404), ("/api/v1/clusters/sandbox/hosts/x", 404),
                         ("/api/v1/tasks/nope", 404), ("/api/v1/nope", 404)):
        with pytest.raises(ApiError) as e:
            client.get(path)
        assert e.value.status == status and str(e.value)
    # a host's drill-down
    plist = client.get("/api/v1/clusters/sandbox/hosts/node2/processlist")
    assert any(p["command"] == "Slave_IO" for p in plist)
    repl = client.get("/api/v1/clusters/sandbox/hosts/node2/replication")
    assert repl[0]["Slave_IO_Running"] == "Yes"
    assert client.get("/api/v1/clusters/sandbox/hosts/node1/replication") == []
    assert "counters" in client.get("/api/v1/clusters/sandbox/hosts/node1/status")
    assert client.get("/api/v1/clusters/sandbox/hosts/node1/locks")["waits"] == []
    assert isinstance(client.get("/api/v1/clusters/sandbox/hosts/node1/variables"), list)
    for path, status in (("/api/v1/clusters/sandbox/hosts/node1/nonsense", 400),
                         ("/api/v1/clusters/sandbox/hosts/node1/explain?session=x", 400),
                         ("/api/v1/clusters/nope/hosts/node1/processlist", 404)):
        with pytest.raises(ApiError) as e:
            client.get(path)
        assert e.value.status == status, path
    io_thread = next(p["id"] for p in plist if p["command"] == "Slave_IO")
    with pytest.raises(ConfirmationRequired):  # a kill needs the session id typed
        client.post("/api/v1/clusters/sandbox/hosts/node2/kill", {"session": io_thread})
    assert client.get("/api/v1/clusters/sandbox/hosts/node2/replication")[0][
        "Slave_IO_Running"] == "Yes"
    conn = client._conn()
    conn.request("GET", "/metrics")  # the unix socket: no token
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    assert r.status == 200 and 'dbops_task_state{' in text and "dbops_host_up{" in text
    doc = client.get("/api/v1/openapi.json")
    assert doc["openapi"].startswith("3.")
    from console.api.routes import ROUTES

    for r in ROUTES:
        assert r.method.lower() in doc["paths"][r.full_path], r.full_path
    schema = doc["components"]["schemas"]["TaskDeclaration"]
    assert {"relay", "backup", "migration", "failover"} <= {
        k["properties"]["kind"]["const"] for k in schema["oneOf"]}


def test_tcp_needs_the_token_and_changes_nothing_without_it(served):
    client, port, state, cfg, _ = served
    token = (state / "api.token").read_text().strip()
    config_before = cfg.read_text()
    audit_before = audit_lines(state)
    for given in (None, "", "wrong", token + "x", token[:-1]):
        for method, path, body in (("GET", "/api/v1/tasks", None),
                                   ("POST", "/api/v1/tasks/r1/start", {}),
                                   ("PUT", "/api/v1/tasks/x", {"kind": "relay"}),
                                   ("DELETE", "/api/v1/tasks/r1", None),
                                   ("GET", "/api/v1/nope", None),
                                   ("GET", "/metrics", None)):
            status, out = tcp_request(port, method, path, given, body)
            assert status == 401, (given, method, path, out)
            assert "token" in out["error"] and token not in json.dumps(out)
    assert client.task("r1")["state"] == "not started"
    assert cfg.read_text() == config_before and audit_lines(state) == audit_before
    status, out = tcp_request(port, "GET", "/api/v1/tasks", token)
    assert status == 200 and {t["task_id"] for t in out} == {"r1"}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse()
    assert r.status == 200 and b'dbops_host_up{cluster="sandbox",host="node1"' in r.read()
    c.close()
    tcp = EngineClient(url=f"http://127.0.0.1:{port}", token=token)
    assert tcp.info()["pid"] == client.info()["pid"]
    assert token not in repr(tcp)


def test_task_lifecycle_and_a_dangerous_command(served):
    client, _, state, _, _ = served
    assert client.start("r1")["state"] == "running"
    wait_for(lambda: client.task("r1")["phase"] == "streaming", timeout=60, what="streaming")
    with pytest.raises(ApiError) as e:
        client.start("r1")
    assert e.value.status == 409 and "already running" in str(e.value)
    assert client.post("/api/v1/tasks/r1/pause")["state"] == "paused"
    assert client.post("/api/v1/tasks/r1/resume")["state"] == "running"
    cmds = {c["name"]: c for c in client.get("/api/v1/tasks/r1/commands")}
    assert cmds["purge"]["dangerous"] and cmds["purge"]["confirm_target"] == "r1"
    before = len(audit_lines(state))
    for confirm in (None, "wrong"):
        with pytest.raises(ConfirmationRequired, match="confirm by typing 'r1'"):
            client.command("r1", "purge", confirm=confirm)
    refused = [a for a in map(json.loads, audit_lines(state)[before:]) if a["action"] == "purge"]
    assert [(a["outcome"], a["actor"]) for a in refused] == [("refused", "test")] * 2
    assert "removed" in client.command("r1", "purge", confirm="r1")
    with pytest.raises(ApiError) as e:
        client.command("r1", "no-such-command")
    assert e.value.status == 400 and "try one of" in str(e.value)
    assert client.post("/api/v1/tasks/r1/stop")["state"] == "done"
    # started again: built anew from the config, continues its relay
    assert client.start("r1")["state"] == "running"
    assert client.post("/api/v1/tasks/r1/stop")["state"] == "done"
    actors = {json.loads(x)["actor"] for x in audit_lines(state)}
    assert "test" in actors


def test_declare_and_remove_keep_the_file_and_refuse_bad_input(served, tmp_path):
    client, _, state, cfg, _ = served
    before = cfg.read_text()
    bad = {"kind": "relay", "cluster": "sandbox", "relay_dir": str(tmp_path / "r2"),
           "server_id": 0, "heartbeat": "fast", "nope": 1}
    with pytest.raises(ApiError) as e:
        client.request("PUT", "/api/v1/tasks/r2", bad)
    problems = e.value.body["problems"]
    assert e.value.status == 400 and len(problems) >= 3
    assert any("server_id" in p for p in problems) and any("nope" in p for p in problems)
    for body in ({"cluster": "sandbox"}, {"kind": "relay", "autostart": "yes"}, [1, 2]):
        with pytest.raises(ApiError) as e:
            client.request("PUT", "/api/v1/tasks/r2", body)
        assert e.value.status == 400
    assert cfg.read_text() == before
    assert not (tmp_path / "r2").exists()
    good = {"kind": "relay", "cluster": "sandbox", "relay_dir": str(tmp_path / "r2"),
            "server_id": 6102, "heartbeat": 0.5, "autostart": True}
    out = client.request("PUT", "/api/v1/tasks/r2", good)
    assert out["reload"] == "+task r2"
    text = cfg.read_text()
    assert text.startswith(before) and "# operator's comment: keep me" in text
    wait_for(lambda: client.task("r2")["state"] == "running", timeout=60, what="r2 running")
    out = client.request("DELETE", "/api/v1/tasks/r2")
    assert out["reload"] == "-task r2"
    assert cfg.read_text() == before
    assert "r2" not in {t["task_id"] for t in client.tasks()}
    with pytest.raises(ApiError) as e:
        client.request("DELETE", "/api/v1/tasks/r2")
    assert e.value.status == 404


def test_two_clients_declare_at_once(served, tmp_path):
    client, _, state, cfg, _ = served
    errors: list[Exception] = []

    def declare(i: int) -> None:
        try:
            EngineClient(unix=socket_path(state), actor=f"c{i}").request(
                "PUT", f"/api/v1/tasks/par{i}",
                {"kind": "relay", "cluster": "sandbox", "relay_dir": str(tmp_path / f"p{i}"),
                 "server_id": 6200 + i})
        except Exception as e:  # noqa: BLE001 - collected and shown
            errors.append(e)

    threads = [threading.Thread(target=declare, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    text = cfg.read_text()
    assert all(f"[tasks.par{i}]" in text for i in range(4))
    assert {f"par{i}" for i in range(4)} <= {t["task_id"] for t in client.tasks()}
    for i in range(4):
        client.request("DELETE", f"/api/v1/tasks/par{i}")


def test_audit_follow_and_the_snapshot_stream(served):
    client, _, state, _, _ = served
    seen: list[tuple[str, dict]] = []

    def follow(path: str, **q) -> None:
        try:
            for name, data in EngineClient(unix=socket_path(state)).events(path, **q):
                seen.append((name, data))
        except (OSError, ApiError, ValueError):
            pass

    threading.Thread(target=follow, args=("/api/v1/audit",), kwargs={"follow": "true", "limit": 5},
                     daemon=True).start()
    threading.Thread(target=follow, args=("/api/v1/stream",), kwargs={"interval": 0.5},
                     daemon=True).start()
    wait_for(lambda: any(n == "snapshot" for n, _ in seen), timeout=60, what="a snapshot")
    client.start("r1")
    wait_for(lambda: any(n == "audit" and d["action"] == "start" and d["target"] == "r1"
                         and d["actor"] == "test" for n, d in seen), timeout=60,
             what="the start in the followed audit log")
    snap = next(d for n, d in seen if n == "snapshot")
    assert "sandbox" in snap["clusters"] and any(t["task_id"] == "r1" for t in snap["tasks"])
    wait_for(lambda: any(n == "snapshot" and any(t["task_id"] == "r1" and t["state"] == "running"
                                                 for t in d["tasks"]) for n, d in seen),
             timeout=60, what="a snapshot with r1 running")
    for bad in ({"interval": "0"}, {"interval": "x"}):
        with pytest.raises(ApiError) as e:
            list(EngineClient(unix=socket_path(state)).events("/api/v1/stream", **bad))
        assert e.value.status == 400
    client.post("/api/v1/tasks/r1/stop")


def test_bad_listen_is_one_line_and_creates_nothing(sandbox, tmp_path):
    import subprocess
    import sys

    state = tmp_path / "state"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(sandbox, state))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        used = busy.getsockname()[1]
        for value, words in (("nonsense", "expected HOST:PORT"), ("127.0.0.1:99999", "HOST:PORT"),
                             (f"127.0.0.1:{used}", "cannot listen"),
                             ("no-such-host.invalid:8080", "unknown host")):
            p = subprocess.run([sys.executable, "-m", "console", "serve", "--config", str(cfg),
                                "--listen", value], capture_output=True, text=True, timeout=120)
            assert p.returncode == 2, p.stderr
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1 and "--listen" in lines[0] and words in lines[0], p.stderr
            assert not state.exists()


def test_a_migration_is_handed_over_on_the_unix_socket_only(served, sandbox):
    """Its body carries the server's password: TCP (even with the token) is
    refused with 403 and nothing started."""
    client, port, state, _, _ = served
    token = (state / "api.token").read_text().strip()
    body = {"host": "127.0.0.1", "port": sandbox.primary_port, "user": "dbops",
            "password": "pw-on-tcp", "options": {"database": "mig", "table": "t",
                                                 "alter": "ADD COLUMN y INT"}}
    status, out = tcp_request(port, "POST", "/api/v1/migrations", token, body)
    assert status == 403 and "unix socket" in out["error"], out
    assert "pw-on-tcp" not in json.dumps(out)
    assert not any(t["task_id"].startswith("migrate-") for t in client.tasks())
    status, out = tcp_request(port, "POST", "/api/v1/migrations", None, body)
    assert status == 401
