"""Helpers for the relay integration tests (real sandboxes)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import pymysql

from console.config import Config, Secret, UIConfig
from console.engine.engine import Engine
from console.engine.relay import RelayOptions, RelayTask
from console.engine.relay.store import RelayStore
from console.mysql import gtid as G
from console.mysql.binlog import events as E
from console.mysql.connection import Endpoint


def repl_endpoint(h, node: str = "node1") -> Endpoint:
    return Endpoint("127.0.0.1", h.port(node), "repl", Secret(file=str(h.sb.secret_path("repl"))), node)


def start_relay(h, relay_dir: Path, node: str = "node1", **opts) -> RelayTask:
    cfg = Config(None, relay_dir / ".state", UIConfig(), {}, {})
    engine = Engine(cfg)
    opts.setdefault("heartbeat", 0.5)
    opts.setdefault("reconnect_max", 1.0)
    eps = {n.name: repl_endpoint(h, n.name) for n in h.nodes}
    eps.update({ep.address: ep for ep in list(eps.values())})  # like a config: name or address
    task = RelayTask("relay-test", repl_endpoint(h, node),
                     RelayOptions(relay_dir=relay_dir, server_id=opts.pop("server_id", 5101), **opts),
                     resolve_target=eps.get)
    engine.add_task(task)
    task.start()
    return task


def gtid_pos(h, node: str = "node1") -> str:
    return h.sql(node, "SELECT @@gtid_binlog_pos")[0][0]


def wait_meta_gtid(relay_dir: Path, want: str, timeout: float = 30.0) -> str:
    """Until relay.meta (the durable relay) contains GTID position ``want``."""
    st = RelayStore(relay_dir)
    target = G.parse(want, G.MARIADB)
    deadline = time.monotonic() + timeout
    got = ""
    while time.monotonic() < deadline:
        m = st.load_meta()
        got = m.gtid if m else ""
        if G.parse(got, G.MARIADB).contains(target):
            return got
        time.sleep(0.05)
    raise AssertionError(f"relay did not reach {want} in {timeout}s (at {got!r})")


_GTID_RE = re.compile(r"^\d+-\d+-\d+$")


def upstream_gtids(h, node: str) -> list[str]:
    """GTIDs in the upstream's binlogs, as the server lists them (SHOW BINLOG EVENTS)."""
    out = []
    logs = [r[0] for r in h.sql(node, "SHOW BINARY LOGS")]
    c = h.connect(node)
    try:
        with c.cursor() as cur:
            for name in logs:
                cur.execute(f"SHOW BINLOG EVENTS IN '{name}'")
                for row in cur.fetchall():
                    if row[2] == "Gtid":  # "BEGIN GTID 0-1-5437 [cid=6379]"
                        out.append(next(t for t in row[5].split() if _GTID_RE.match(t)))
    finally:
        c.close()
    return out


def compare_with_upstream(relay_sub: Path, datadir: Path, active: str) -> list[str]:
    """Assert every relay file equals the upstream file of the same name.

    The one allowed difference: the upstream's *active* binlog has
    LOG_EVENT_BINLOG_IN_USE_F (0x1) set in its FORMAT_DESCRIPTION flags
    (byte 21 of the file) until it is closed; the dump thread clears that
    flag in what it sends (the CRC is computed with the flag clear, so both
    CRCs are valid).  Returns the names compared."""
    names = []
    for f in sorted(relay_sub.iterdir()):
        up = (datadir / f.name).read_bytes()
        ours = f.read_bytes()
        if f.name == active:
            assert up[21] & E.LOG_EVENT_BINLOG_IN_USE_F
            assert ours[21] == up[21] & ~E.LOG_EVENT_BINLOG_IN_USE_F
            up = up[:21] + ours[21:22] + up[22:]
            up = up[:len(ours)]  # the upstream may have moved on since
        if ours != up:
            diff = next((i for i, (a, b) in enumerate(zip(ours, up, strict=False)) if a != b), min(len(ours), len(up)))
            raise AssertionError(f"{f.name} differs from the upstream at byte {diff} "
                                 f"(ours {len(ours)} bytes, upstream {len(up)})")
        names.append(f.name)
    return names


def mariadb_binlog_text(path: Path) -> str:
    r = subprocess.run(["mariadb-binlog", "--base64-output=decode-rows", "-vv", str(path)],
                       capture_output=True, text=True, errors="surrogateescape")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines()
             if "Warning: this binlog is either in use" not in ln and not ln.startswith("# at ")]
    return "\n".join(lines)


class Load:
    """Small write transactions in a thread (with an occasional FLUSH BINARY LOGS)."""

    def __init__(self, h, node: str = "node1", table: str = "relaytest.load", flush_every: float = 1.5):
        self.h, self.node, self.table, self.flush_every = h, node, table, flush_every
        self.stop_ev = threading.Event()
        self.count = 0
        self.error: BaseException | None = None
        h.sql(node, "CREATE DATABASE IF NOT EXISTS relaytest",
              f"CREATE TABLE IF NOT EXISTS {table} (id INT AUTO_INCREMENT PRIMARY KEY, "
              "v VARCHAR(200), n INT)")
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            c: pymysql.Connection = self.h.connect(self.node)
            last_flush = time.monotonic()
            with c.cursor() as cur:
                while not self.stop_ev.is_set():
                    cur.execute("BEGIN")
                    cur.execute(f"INSERT INTO {self.table} (v, n) VALUES (REPEAT('x', 150), %s)", (self.count,))
                    cur.execute(f"UPDATE {self.table} SET n = n + 1 WHERE id = LAST_INSERT_ID()")
                    cur.execute("COMMIT")
                    self.count += 1
                    if time.monotonic() - last_flush > self.flush_every:
                        cur.execute("FLUSH BINARY LOGS")
                        last_flush = time.monotonic()
                    time.sleep(0.002)
            c.close()
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.error = e

    def __enter__(self) -> Load:
        self.t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_ev.set()
        self.t.join(30)
        assert self.error is None, self.error
