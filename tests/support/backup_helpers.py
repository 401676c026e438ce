"""Helpers for the backup integration tests: a private config, a writer, content checksums."""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from console.engine.backup import zstd
from console.engine.backup.catalog import Catalog
from console.engine.backup.segments import data_key, split_transactions
from console.engine.backup.storage import LocalStorage


def backup_config(handle, tmp: Path, storage: Path, **opts) -> Path:
    """The sandbox config with its sandbox-backup task pointed at ``storage``."""
    text = handle.config_path.read_text()
    text = re.sub(r'(?m)^storage = .*$', f'storage = "{storage}"', text)
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') if not isinstance(v, bool)
                    else f"{k} = {str(v).lower()}\n" for k, v in opts.items())
    head, _, block = text.partition('[tasks.sandbox-backup]\n')
    rest = ""
    if "\n[" in block:
        block, rest = block.split("\n[", 1)
        rest = "\n[" + rest
    for k in opts:                          # given options replace the sandbox's own
        block = re.sub(rf'(?m)^{k} = .*\n?', "", block)
    text = head + '[tasks.sandbox-backup]\n' + extra + block + rest
    p = tmp / "dbops-backup.toml"
    p.write_text(text)
    return p


class Writer:
    """Autocommit inserts/updates/deletes into ``db.t`` on the primary from a thread.

    ``hold()`` stops writing (after the statement in flight) until ``release()``.
    """

    def __init__(self, handle, db: str, node: str = "node1"):
        self.handle, self.db, self.node = handle, db, node
        self.stop_ev = threading.Event()
        self.go = threading.Event()
        self.go.set()
        self.idle = threading.Event()
        self.count = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def setup(self) -> Writer:
        self.handle.sql(self.node, f"CREATE DATABASE IF NOT EXISTS {self.db}",
                        f"CREATE TABLE IF NOT EXISTS {self.db}.t (id INT PRIMARY KEY "
                        f"AUTO_INCREMENT, k INT NOT NULL, v VARCHAR(64), KEY(k))")
        return self

    def start(self) -> Writer:
        self.thread.start()
        return self

    def _run(self) -> None:
        c = None
        i = 0
        while not self.stop_ev.is_set():
            if not self.go.is_set():
                self.idle.set()
                self.go.wait(0.1)
                continue
            self.idle.clear()
            try:
                if c is None:
                    c = self.handle.connect(self.node)
                with c.cursor() as cur:
                    i += 1
                    if i % 10 == 3:
                        cur.execute(f"UPDATE {self.db}.t SET v = CONCAT(v, 'u') WHERE k = %s", (i % 97,))
                    elif i % 10 == 7:
                        cur.execute(f"DELETE FROM {self.db}.t WHERE k = %s LIMIT 1", (i % 89,))
                    else:
                        cur.execute(f"INSERT INTO {self.db}.t (k, v) VALUES (%s, %s)",
                                    (i % 100, f"row-{i}"))
                self.count += 1
            except Exception as e:  # noqa: BLE001 - the writer survives a failover
                self.errors.append(str(e))
                c = None
                time.sleep(0.2)
        self.idle.set()

    def hold(self) -> None:
        self.go.clear()
        self.idle.wait(10)

    def release(self) -> None:
        self.go.set()

    def stop(self) -> None:
        self.stop_ev.set()
        self.go.set()
        if self.thread.is_alive():
            self.thread.join(10)


def table_checksum(conn, db: str) -> str:
    h = hashlib.sha256()
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, k, v FROM {db}.t ORDER BY id")
        for row in cur.fetchall():
            h.update(repr(row).encode())
    return h.hexdigest()


def stored_gtids(storage: Path) -> list[tuple[int, int, int]]:
    cat = Catalog(LocalStorage(storage))
    out = []
    for n in cat.segment_seqs():
        _, txns = split_transactions(zstd.decompress(cat.storage.get(data_key(n))))
        out += [(t.domain, t.server_id, t.seq) for t in txns]
    return out


def wait_for(pred, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def running_backup(handle, tmp: Path, **opts):
    """(engine, task) of the sandbox-backup task on storage ``tmp/store``,
    started and streaming; shut down at the end."""
    from console.config import load_config
    from console.engine.engine import Engine

    engine = Engine(load_config(backup_config(handle, tmp, tmp / "store", **opts)))
    task = engine.create_configured("sandbox-backup")
    try:
        task.start()
        wait_for(lambda: task.status().phase == "streaming", what="streaming")
        yield engine, task
    finally:
        engine.shutdown()


def take_snapshot(engine, task, method: str) -> None:
    """Take a snapshot through the task's command and wait until it is stored."""
    before = len(task.catalog.snapshots())
    engine.command(task.task_id, "snapshot-now", method=method)
    wait_for(lambda: not task.status().detail.snapshot_running, 120, what="snapshot")
    snaps = task.catalog.snapshots()
    assert len(snaps) == before + 1, task.status().last_error
    assert snaps[-1].method == method and snaps[-1].gtid


def wait_backed_up(handle, task) -> str:
    """The primary's GTID position once the task's checkpoint has reached it."""
    gtid = handle.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
    wait_for(lambda: task.status().detail.checkpoint_gtid == gtid, 60, what=f"checkpoint {gtid}")
    return gtid


def start_cli_backup(cfg: Path) -> subprocess.Popen:
    """``dbops-console backup`` of sandbox-backup in a child process (stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "console.cli", "backup", "--config", str(cfg),
                             "--task", "sandbox-backup", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[2])


def dump_backup_with_rows(handle, tmp: Path, db: str, rows: int) -> tuple[Path, str]:
    """(config path, GTID backed up): a backup task started at "now", a
    mariadb-dump snapshot, then ``rows`` single-row transactions into ``db``.t,
    all of them backed up when this returns."""
    handle.sql("node1", f"CREATE DATABASE IF NOT EXISTS {db}",
               f"CREATE TABLE IF NOT EXISTS {db}.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
    with running_backup(handle, tmp, start_from="now") as (engine, task):
        take_snapshot(engine, task, "mariadb-dump")
        c = handle.connect("node1")
        try:
            with c.cursor() as cur:
                for i in range(rows):
                    cur.execute(f"INSERT INTO {db}.t (v) VALUES (%s)", (i,))
        finally:
            c.close()
        gtid = wait_backed_up(handle, task)
    return backup_config(handle, tmp, tmp / "store", start_from="now"), gtid
