"""Putting a snapshot into a restore's target directory: the programs it runs.

* mariadb-backup snapshot: ``zstd -d | mbstream -x`` into ``DIR/data``, then
  ``mariadb-backup --prepare``;
* logical snapshot: a fresh ``mariadb-install-db``, and later (once the
  server runs) ``zstd -d | mariadb`` loads the dump.

Every child dies with the restore (``console.children``): a ``kill -9`` of
the restore leaves none of them running.
"""

from __future__ import annotations

import shutil
import subprocess
import threading

from console.children import die_with_parent
from console.engine.backup import zstd
from console.engine.backup.catalog import Catalog, SnapshotManifest
from console.engine.backup.mysqld import RESTORE_USER, RestoreError, RestoreServer
from console.errors import UserError
from console.mysql.tools import client_options, need


def _from_storage(catalog: Catalog, key: str, cmd: list[str],
                  pass_fds: tuple[int, ...] = ()) -> tuple[int, bytes]:
    """Run ``cmd`` with the decompressed object ``key`` on its stdin: (its
    exit code, its stderr), or (1, zstd's stderr) when decompression failed.
    Both processes are gone when this returns or raises (a signal included)."""
    with catalog.storage.reader(key) as src:
        unz = subprocess.Popen([zstd.binary(), "-q", "-d", "-c"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=die_with_parent())
        assert unz.stdin is not None and unz.stdout is not None and unz.stderr is not None
        failed: list[BaseException] = []

        def pump() -> None:  # the object (read from any storage, decrypted) into zstd
            try:
                shutil.copyfileobj(src, unz.stdin, 1 << 20)
            except BrokenPipeError:
                pass                      # zstd or the tool stopped: their exit says why
            except BaseException as e:    # noqa: BLE001 - reported below
                failed.append(e)
                unz.kill()
            finally:
                try:
                    unz.stdin.close()
                except BrokenPipeError:
                    pass

        feeder = threading.Thread(target=pump, name="restore-unpack-feed", daemon=True)
        feeder.start()
        done = False
        try:
            r = subprocess.run(cmd, stdin=unz.stdout, capture_output=True, pass_fds=pass_fds,
                               preexec_fn=die_with_parent())
            done = True
        finally:
            unz.stdout.close()
            if not done:
                unz.kill()
            unz.wait()
            feeder.join()
        if failed:
            e = failed[0]
            if isinstance(e, UserError):
                raise e
            return 1, f"reading snapshot object {key}: {e}".encode()
        if r.returncode != 0:
            return r.returncode, r.stderr or b""
        if unz.returncode != 0:
            return 1, unz.stderr.read()
    return 0, b""


def unpack(catalog: Catalog, snap: SnapshotManifest, server: RestoreServer) -> None:
    if snap.method == "mariadb-backup":
        server.datadir.mkdir(parents=True)
        rc, err = _from_storage(catalog, snap.key, [need("mbstream"), "-x", "-C", str(server.datadir)])
        if rc != 0:
            raise RestoreError(f"cannot unpack snapshot {snap.id}: "
                               f"{err.decode(errors='replace').strip()[-200:]}")
        exe = need("mariadb-backup", "mariabackup")
        r = subprocess.run([exe, "--prepare", f"--target-dir={server.datadir}"],
                           capture_output=True, text=True, preexec_fn=die_with_parent())
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RestoreError(f"mariadb-backup --prepare failed: {tail[0][:300]}")
    else:
        server.install()


def load_dump(catalog: Catalog, snap: SnapshotManifest, server: RestoreServer) -> None:
    client = need("mariadb", "mysql")
    with client_options(socket=server.socket, user=RESTORE_USER, password=server.password()) as cred:
        rc, err = _from_storage(catalog, snap.key, [client, cred.arg, "--binary-mode",
                                                    "--max-allowed-packet=1G"], pass_fds=cred.pass_fds)
    if rc != 0:
        raise RestoreError(f"loading dump {snap.id} failed: "
                           f"{err.decode(errors='replace').strip()[-300:]}")


def check_tools(method: str) -> None:
    """Every program the restore of a ``method`` snapshot runs is installed."""
    zstd.binary()
    need("mariadbd", "mysqld")
    if method == "mariadb-backup":
        need("mbstream")
        need("mariadb-backup", "mariabackup")
    else:
        need("mariadb-install-db", "mysql_install_db")
        need("mariadb", "mysql")
