"""Base snapshots streamed into storage, with the GTID they are consistent at.

* ``mariadb-backup --backup --stream=xbstream`` (physical; must run on the
  database host because it reads the data directory) piped through ``zstd``
  into the storage writer.  Its GTID position is the one it logs after its
  ``BACKUP STAGE`` lock ("GTID of the last change").
* logical (method ``mariadb-dump``; works remotely): one consistent-snapshot
  session reads the position and every table's data exactly, mariadb-dump
  writes the definitions (``logical.py``; why not mariadb-dump's own data:
  ``dumpdata.py``).

``auto`` picks mariadb-backup when the binary exists and the server's data
directory is readable here, else mariadb-dump.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator

from console.engine.backup import logical, zstd
from console.engine.backup.catalog import SNAPSHOT_PREFIX, Catalog, SnapshotManifest
from console.engine.backup.storage import Storage
from console.errors import UserError
from console.mysql.connection import Endpoint, connect, query, query_one
from console.mysql.tools import (
    LEGACY_CRED_PREFIX,
    client_options,
    need,
    private_dir,
    sweep_dirs,
    tool_process,
)

SYSTEM_DBS = {"mysql", "information_schema", "performance_schema", "sys"}
_BACKUP_POS = re.compile(r"MySQL binlog position: filename '([^']*)', position '(\d+)'"
                         r"(?:, GTID of the last change '([^']*)')?")


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


XB_PREFIX = "dbops-xb-"


def take_snapshot(storage: Storage, ep: Endpoint, method: str = "auto") -> SnapshotManifest:
    method, datadir, version = choose_method(ep, method)
    catalog = Catalog(storage)
    sweep_dirs(XB_PREFIX, LEGACY_CRED_PREFIX)  # what interrupted runs left
    catalog.sweep_unfinished_snapshots()
    started = time.time()
    sid = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + f"-{int(started * 1000) % 1000:03d}"
    try:
        if method == "mariadb-backup":
            key = f"{SNAPSHOT_PREFIX}/{sid}/backup.xb.zst"
            file, pos, gtid, size, sha = _mariadb_backup(storage, key, ep, datadir)
        else:
            key = f"{SNAPSHOT_PREFIX}/{sid}/dump.sql.zst"
            file, pos, gtid, size, sha = _mariadb_dump(storage, key, ep)
    except BaseException:
        catalog.sweep_unfinished_snapshots()  # the failed one's directory
        raise
    m = SnapshotManifest(id=sid, method=method, source=ep.address, gtid=gtid, binlog_file=file,
                         binlog_pos=pos, started=started, finished=time.time(), key=key,
                         stored_bytes=size, sha256=sha, server_version=version,
                         key_id=getattr(storage, "key_id", ""))
    catalog.publish_snapshot(m)
    return m


@contextlib.contextmanager
def _compressor(sink) -> Iterator[zstd.Compressor]:
    """zstd into ``sink``, closed (waited for) when the block ends; after an
    error in the block a failing close does not hide that error."""
    comp = zstd.Compressor(sink, threads=2)
    try:
        yield comp
    except BaseException:
        with contextlib.suppress(Exception):
            comp.close()
        raise
    comp.close()


def _mariadb_backup(storage: Storage, key: str, ep: Endpoint, datadir: str):
    exe = need("mariadb-backup", "mariabackup")
    with private_dir(XB_PREFIX) as work, client_options(ep) as cred, storage.writer(key) as sink, \
            tempfile.TemporaryFile() as err:
        with _compressor(sink) as comp, \
                tool_process([exe, "--backup", "--stream=xbstream", f"--target-dir={work}/t",
                       f"--datadir={datadir}", "--parallel=2"], cred,
                      stdout=comp.stdin, stderr=err) as proc:
            rc = proc.wait()
        err.seek(0)
        text = err.read().decode(errors="replace")
        if rc != 0:
            last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["no output"]
            raise SnapshotError(f"mariadb-backup failed (exit {rc}): {last[0][:300]}")
        found = list(_BACKUP_POS.finditer(text))
        m = found[-1] if found else None
        if m is None or not m.group(3):
            raise SnapshotError("mariadb-backup did not report a binlog GTID position "
                                "(is binary logging on?)")
        return m.group(1), int(m.group(2)), m.group(3), comp.bytes_out, comp.sha.hexdigest()


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
    with client_options(ep) as cred, storage.writer(key) as sink, _compressor(sink) as comp:
        pos = logical.dump(ep, exe, cred, dbs, comp.write)
    return pos.file, pos.pos, pos.gtid, comp.bytes_out, comp.sha.hexdigest()
