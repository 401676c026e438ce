"""Base snapshots streamed into storage, with the GTID they are consistent at.

* ``mariadb-backup --backup --stream=xbstream`` (physical; must run on the
  database host because it reads the data directory) piped through ``zstd``
  into the storage writer.  Its GTID position is the one it logs after its
  ``BACKUP STAGE`` lock ("GTID of the last change").
* ``mariadb-dump --single-transaction --master-data=2 --gtid`` (logical
  fallback; works remotely): the GTID is read from the dump's own header.

``auto`` picks mariadb-backup when the binary exists and the server's data
directory is readable here, else mariadb-dump.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time

from console.engine.backup import zstd
from console.engine.backup.catalog import SNAPSHOT_PREFIX, Catalog, SnapshotManifest
from console.engine.backup.storage import Storage
from console.errors import UserError
from console.mysql.connection import Endpoint, connect, query, query_one
from console.mysql.tools import defaults_file, need

SYSTEM_DBS = {"mysql", "information_schema", "performance_schema", "sys"}
_BACKUP_POS = re.compile(r"MySQL binlog position: filename '([^']*)', position '(\d+)'"
                         r"(?:, GTID of the last change '([^']*)')?")
_DUMP_GTID = re.compile(rb"gtid_slave_pos='([^']*)'")
_DUMP_POS = re.compile(rb"MASTER_LOG_FILE='([^']*)', MASTER_LOG_POS=(\d+)")


class SnapshotError(UserError):
    pass


def choose_method(ep: Endpoint, method: str) -> tuple[str, str, str]:
    """(method, datadir, version) after resolving ``auto``."""
    c = connect(ep, read_timeout=10)
    try:
        row = query_one(c, "SELECT @@datadir AS d, @@version AS v")
    finally:
        c.close()
    datadir, version = str(row["d"]), str(row["v"])
    local = os.path.isdir(datadir) and os.access(datadir, os.R_OK) and \
        os.path.exists(os.path.join(datadir, "ibdata1"))
    if method == "auto":
        method = "mariadb-backup" if (shutil.which("mariadb-backup") and local) else "mariadb-dump"
    if method == "mariadb-backup" and not local:
        raise SnapshotError(f"{ep.label}: data directory {datadir} is not readable here; "
                            f"mariadb-backup must run on the database host (use mariadb-dump)")
    return method, datadir, version


def take_snapshot(storage: Storage, ep: Endpoint, method: str = "auto") -> SnapshotManifest:
    method, datadir, version = choose_method(ep, method)
    started = time.time()
    sid = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + f"-{int(started * 1000) % 1000:03d}"
    if method == "mariadb-backup":
        key = f"{SNAPSHOT_PREFIX}/{sid}/backup.xb.zst"
        file, pos, gtid, size, sha = _mariadb_backup(storage, key, ep, datadir)
    else:
        key = f"{SNAPSHOT_PREFIX}/{sid}/dump.sql.zst"
        file, pos, gtid, size, sha = _mariadb_dump(storage, key, ep)
    m = SnapshotManifest(id=sid, method=method, source=ep.address, gtid=gtid, binlog_file=file,
                         binlog_pos=pos, started=started, finished=time.time(), key=key,
                         stored_bytes=size, sha256=sha, server_version=version)
    Catalog(storage).publish_snapshot(m)
    return m


def _mariadb_backup(storage: Storage, key: str, ep: Endpoint, datadir: str):
    exe = need("mariadb-backup", "mariabackup")
    work = tempfile.mkdtemp(prefix="dbops-xb-")
    log = os.path.join(work, "stderr.log")
    try:
        with defaults_file(ep) as cnf, storage.writer(key) as sink, open(log, "wb") as err:
            comp = zstd.Compressor(sink, threads=2)
            try:
                proc = subprocess.Popen(
                    [exe, f"--defaults-extra-file={cnf}", "--backup", "--stream=xbstream",
                     f"--target-dir={work}/t", f"--datadir={datadir}", "--parallel=2"],
                    stdin=subprocess.DEVNULL, stdout=comp.stdin, stderr=err)
                rc = proc.wait()
            finally:
                comp.close()
            text = open(log, errors="replace").read()
            if rc != 0:
                last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["no output"]
                raise SnapshotError(f"mariadb-backup failed (exit {rc}): {last[0][:300]}")
            found = list(_BACKUP_POS.finditer(text))
            m = found[-1] if found else None
            if m is None or not m.group(3):
                raise SnapshotError("mariadb-backup did not report a binlog GTID position "
                                    "(is binary logging on?)")
            return m.group(1), int(m.group(2)), m.group(3), comp.bytes_out, comp.sha.hexdigest()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def user_databases(ep: Endpoint) -> list[str]:
    c = connect(ep, read_timeout=10)
    try:
        rows = query(c, "SHOW DATABASES")
    finally:
        c.close()
    return [str(next(iter(r.values()))) for r in rows if str(next(iter(r.values()))) not in SYSTEM_DBS]


def _mariadb_dump(storage: Storage, key: str, ep: Endpoint):
    exe = need("mariadb-dump", "mysqldump")
    dbs = user_databases(ep)
    if not dbs:
        raise SnapshotError(f"{ep.label}: no user database to dump")
    with defaults_file(ep) as cnf, storage.writer(key) as sink:
        comp = zstd.Compressor(sink, threads=2)
        err = tempfile.TemporaryFile()
        head = tail = b""
        try:
            proc = subprocess.Popen(
                [exe, f"--defaults-extra-file={cnf}", "--single-transaction", "--master-data=2",
                 "--gtid", "--routines", "--events", "--triggers", "--hex-blob",
                 "--default-character-set=utf8mb4", "--max-allowed-packet=1G",
                 "--databases", *dbs],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
            assert proc.stdout is not None
            while True:
                chunk = proc.stdout.read(1 << 20)
                if not chunk:
                    break
                if len(head) < 1 << 16:
                    head += chunk[:1 << 16]
                tail = (tail + chunk)[-(1 << 16):]   # the GTID comes at the end
                comp.write(chunk)
            rc = proc.wait()
        finally:
            comp.close()
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
        err.close()
        if rc != 0:
            raise SnapshotError(f"mariadb-dump failed (exit {rc}): {text.splitlines()[-1:] or ''}")
        found = _DUMP_GTID.findall(head + tail)
        g = found[-1] if found else None
        p = _DUMP_POS.search(head)
        if g is None:
            raise SnapshotError("mariadb-dump wrote no GTID position (is binary logging on?)")
        return (p.group(1).decode() if p else "", int(p.group(2)) if p else 0,
                g.decode(), comp.bytes_out, comp.sha.hexdigest())
