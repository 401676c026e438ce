"""Traffic follows the primary through a real HAProxy (Debian's), started by
the test with its own config: a TCP frontend, backend ``writer`` with the
sandbox's nodes as servers (node1 in service, the others ``disabled``), the
admin socket.  A client writes through HAProxy all along a switchover and an
emergency failover (kill -9); after the promotion its writes land on the new
primary, the old primary's server is in maint."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pymysql
import pytest

from console.commands.recovery_output import report_text
from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.emergency import Failover
from console.engine.failover.haproxy import Runtime
from console.engine.failover.switchover import Switchover
from console.kinds.haproxy import HaproxyOptions
from tests.integration.failover_support import APP_PW, APP_USER, ids_on, prepare
from tests.integration.test_failover_emergency import wait_dead
from tests.support.sandboxes import free_port_block

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"),
                                 reason="haproxy is not installed (scripts/bootstrap.sh installs it)")]

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class Haproxy:
    """A private haproxy in the foreground (-db), stopped by its pid."""

    def __init__(self, directory: Path, nodes: list[tuple[str, int]], check: bool = False):
        """``nodes``: (server name, port); the first in service, the others ``disabled``."""
        directory.mkdir(parents=True, exist_ok=True)
        self.sock = str(directory / "admin.sock")
        self.port = free_port_block(1)
        opt = " check inter 500ms" if check else ""
        servers = "\n".join(f"    server {name} 127.0.0.1:{port}{opt}" + ("" if i == 0 else " disabled")
                            for i, (name, port) in enumerate(nodes))
        cfg = directory / "haproxy.cfg"
        cfg.write_text(f"""global
    stats socket {self.sock} mode 600 level admin
defaults
    mode tcp
    timeout connect 500ms
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{self.port}
    default_backend writer
backend writer
{servers}
""")
        self.log = open(directory / "haproxy.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                Runtime(self.sock).servers("writer")
                break
            except Exception:  # noqa: BLE001 - not up yet
                assert self.proc.poll() is None, (directory / "haproxy.log").read_text()
                assert time.monotonic() < deadline, "haproxy did not open its admin socket"
                time.sleep(0.05)

    def state(self) -> dict[str, bool]:
        """server -> in maintenance"""
        return {s.name: s.maint for s in Runtime(self.sock).servers("writer")}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def haproxy(tmp_path):
    made: list[Haproxy] = []

    def start(nodes, check=False):
        made.append(Haproxy(tmp_path / f"haproxy{len(made)}", nodes, check))
        return made[-1]

    yield start
    for hp in made:
        hp.stop()


class ThroughProxy(threading.Thread):
    """Inserts through HAProxy like an application: on any error it
    reconnects and goes on.  ``acks``: (id, server port, time acknowledged)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.acks: list[tuple[int, int, float]] = []
        self.errors = 0
        self.error_log: list[tuple[float, str]] = []  # (when, what) of each failed attempt
        self.stop_ev = threading.Event()

    def run(self) -> None:
        conn, server, i = None, 0, 1
        while not self.stop_ev.is_set():
            try:
                if conn is None:
                    conn = pymysql.connect(host="127.0.0.1", port=self.port, user=APP_USER, password=APP_PW,
                                           autocommit=True, connect_timeout=0.5, read_timeout=2,
                                           write_timeout=2)
                    with conn.cursor() as cur:
                        cur.execute("SELECT @@port")
                        server = int(cur.fetchone()[0])
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO app.t VALUES (%s, 'proxy', NOW(6))", (i,))
                self.acks.append((i, server, time.time()))
                i += 1
            except pymysql.MySQLError as e:
                self.errors += 1
                self.error_log.append((time.time(), f"{type(e).__name__} {e.args[:1]}"))
                if e.args and e.args[0] == 1062:
                    i += 1
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.005)
            time.sleep(0.002)

    def finish(self) -> None:
        self.stop_ev.set()
        self.join(10)


def switch_time(rep, w: ThroughProxy, new_port: int) -> tuple[float, float]:
    """(seconds from the end of the promote step to the first write
    acknowledged by the new primary through HAProxy, the haproxy switch step's ms)."""
    promote = next(s for s in rep.steps if s.name == "promote")
    switch = next(s for s in rep.steps if s.name == "haproxy switch")
    promoted_at = promote.started + promote.ms / 1000
    first = min(t for _, port, t in w.acks if port == new_port)
    timeline = [f"{(t - promoted_at) * 1000:+.0f} ms {what}" for t, what in w.error_log
                if abs(t - promoted_at) < 5]
    print(f"\n  after promote: switch step {(switch.started - promoted_at) * 1000:+.0f} ms .. "
          f"{(switch.started + switch.ms / 1000 - promoted_at) * 1000:+.0f} ms; client errors: "
          + "; ".join(timeline))
    return first - promoted_at, switch.ms


def test_switchover_moves_the_writer_backend_then_a_missing_haproxy_is_reported(make_sandbox, haproxy,
                                                                               tmp_path):
    h = make_sandbox(2)
    prepare(h)
    # a history table made before recovery ids: the column is added on first use
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS dbops",
          "CREATE TABLE dbops.failover_history (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
          "cluster VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, at DOUBLE NOT NULL, "
          "old_primary VARCHAR(255) NOT NULL, new_primary VARCHAR(255) NOT NULL, "
          "acknowledged TINYINT NOT NULL DEFAULT 0, KEY (cluster, at)) ENGINE=InnoDB")
    h.wait_replicas_caught_up()
    names = ["node1", "node2", "node3"]
    ports = [h.port(n) for n in names]
    hp = haproxy(list(zip(names, ports, strict=True)))
    cluster = dataclasses.replace(h.cluster, haproxy=HaproxyOptions(admin_socket=hp.sock))
    state = tmp_path / "state"

    # the dry run prints the exact runtime commands (names read from haproxy)
    plan = Switchover(ClusterOps(cluster, state), RecoveryOptions(to="node2", dry_run=True)).run()
    step = next(s for s in plan.steps if s.name == "haproxy switch")
    assert step.sql == ("set server writer/node2 state ready", "set server writer/node1 state maint",
                        "set server writer/node3 state maint", "shutdown sessions server writer/node1")
    assert "set server writer/node2 state ready" in report_text(plan)
    assert hp.state() == {"node1": False, "node2": True, "node3": True}  # nothing changed

    w = ThroughProxy(hp.port)
    w.start()
    time.sleep(1.0)
    rep = Switchover(ClusterOps(cluster, state), RecoveryOptions(to="node2")).run()
    time.sleep(1.5)
    w.finish()
    assert rep.outcome == "ok", rep.error
    assert rep.traffic == "ok: writer -> node2", report_text(rep)
    steps = {s.name: s for s in rep.steps}
    assert steps["haproxy switch"].outcome == "ok" and steps["haproxy confirm"].outcome == "ok"
    names_in_order = [s.name for s in rep.steps]
    assert names_in_order.index("haproxy switch") == names_in_order.index("promote") + 1
    assert hp.state() == {"node1": True, "node2": False, "node3": True}
    secs, ms = switch_time(rep, w, ports[1])
    print(f"\nswitchover: first write through haproxy on the new primary {secs * 1000:.0f} ms "
          f"after promote (haproxy switch step {ms:.1f} ms; {w.errors} client errors)")
    assert secs < 5.0, secs  # generous: it switched (the figure is reported, not asserted)
    assert {p for _, p, _ in w.acks} == {ports[0], ports[1]}
    switched_at = steps["haproxy switch"].started + steps["haproxy switch"].ms / 1000
    assert all(p == ports[1] for _, p, t in w.acks if t > switched_at + 0.5)
    acked = {i for i, _, _ in w.acks}
    assert acked <= ids_on(h, "node2")
    # the recovery id is in the journal and the history
    import json
    j = json.loads(Path(rep.journal).read_text())
    assert j["recovery_id"] == rep.recovery_id and j["traffic"] == rep.traffic
    assert h.sql("node2", "SELECT recovery_id FROM dbops.failover_history")[-1][0] == rep.recovery_id

    # haproxy gone: the switchover back stands, the report says haproxy failed
    hp.stop()
    back = Switchover(ClusterOps(cluster, state), RecoveryOptions(to="node1")).run()
    assert back.outcome == "ok", back.error
    assert back.traffic.startswith(f"failed: haproxy admin socket {hp.sock}: "), back.traffic
    assert next(s for s in back.steps if s.name == "haproxy switch").outcome == "failed"
    assert "haproxy: failed: haproxy admin socket" in report_text(back)


def test_failover_after_kill_9_moves_the_writer_backend_with_health_checks(make_sandbox, haproxy, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    names = ["node1", "node2", "node3"]
    ports = [h.port(n) for n in names]
    hp = haproxy(list(zip(names, ports, strict=True)), check=True)  # health checks: the dead one goes DOWN
    cluster = dataclasses.replace(h.cluster, haproxy=HaproxyOptions(admin_socket=hp.sock))
    ops = ClusterOps(cluster, tmp_path / "state")
    w = ThroughProxy(hp.port)
    w.start()
    time.sleep(1.0)
    prev = ops.discover()
    h.sb.stop_node("node1", signal.SIGKILL)
    wait_dead(ops, prev)
    rep = Failover(ops, RecoveryOptions(), previous=prev).run()
    time.sleep(1.5)
    w.finish()
    assert rep.outcome == "ok", rep.error
    new_port = int(rep.new_primary.rpartition(":")[2])
    new = names[ports.index(new_port)]
    assert rep.traffic == f"ok: writer -> {new}", report_text(rep)
    assert hp.state() == {n: n != new for n in names}
    secs, ms = switch_time(rep, w, new_port)
    print(f"\nfailover: first write through haproxy on the new primary {secs * 1000:.0f} ms "
          f"after promote (haproxy switch step {ms:.1f} ms; {w.errors} client errors)")
    assert secs < 5.0, secs
    assert any(p == new_port for _, p, _ in w.acks)


def test_addr_mode_points_the_one_server_at_the_new_primary(make_sandbox, haproxy, tmp_path):
    h = make_sandbox(1)
    prepare(h)
    ports = [h.port("node1"), h.port("node2")]
    hp = haproxy([("primary", ports[0])])
    cluster = dataclasses.replace(h.cluster, haproxy=HaproxyOptions(admin_socket=hp.sock, mode="addr",
                                                                     server="primary"))
    w = ThroughProxy(hp.port)
    w.start()
    time.sleep(1.0)
    rep = Switchover(ClusterOps(cluster, tmp_path / "state"), RecoveryOptions(to="node2")).run()
    time.sleep(1.5)
    w.finish()
    assert rep.outcome == "ok", rep.error
    assert rep.traffic == "ok: writer -> primary", report_text(rep)
    switch = next(s for s in rep.steps if s.name == "haproxy switch")
    assert switch.sql[1:] == (f"set server writer/primary addr 127.0.0.1 port {ports[1]}",
                              "set server writer/primary state ready",
                              "shutdown sessions server writer/primary")
    (srv,) = Runtime(hp.sock).servers("writer")
    assert (srv.address, srv.maint) == (f"127.0.0.1:{ports[1]}", False)
    secs, ms = switch_time(rep, w, ports[1])
    print(f"\naddr mode switchover: first write on the new primary {secs * 1000:.0f} ms after promote "
          f"(haproxy switch step {ms:.1f} ms; {w.errors} client errors)")
    assert secs < 5.0, secs
    assert {i for i, _, _ in w.acks} <= ids_on(h, "node2")
