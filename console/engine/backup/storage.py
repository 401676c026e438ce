"""Backup storage: a small interface and a local directory implementation.

Keys are relative paths with ``/`` separators (``log/0000000001.binlog.zst``).
Every ``put`` is an atomic publish: a reader sees the old object, or the
new one complete and durable, never a part.  An object store implements the
same five methods (its PUT is atomic by nature).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from console.engine.state import fsync_dir
from console.errors import UserError


class StorageError(UserError):
    """Backup storage refused or lost an object."""


class Storage:
    """What the backup needs from a store of objects."""

    read_ahead = 2      # objects a restore reads at once (more where a read waits on a network)

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def list(self, prefix: str = "") -> list[str]:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def size(self, key: str) -> int:
        raise NotImplementedError

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """A file-like sink for a big object, published when the block ends
        without error (and discarded otherwise)."""
        raise NotImplementedError
        yield  # pragma: no cover

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        raise NotImplementedError
        yield  # pragma: no cover

    def clean_temp(self, prefix: str = "") -> int:
        """Remove what writers that died mid-publish left under ``prefix``
        (never a live writer's); returns how many objects."""
        return 0

    def remove_empty_dirs(self, prefix: str) -> int:
        """Remove empty directories below ``prefix`` (stores without
        directories have none)."""
        return 0

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except StorageError:
            return False

    def describe(self) -> str:
        return type(self).__name__


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class LocalStorage(Storage):
    """Objects are files under ``root``; publish = fsync temp file, rename, fsync dir."""

    def __init__(self, root: str | os.PathLike, *, create: bool | None = True):
        """``create=False`` for what only reads a backup (verify, list,
        retention, restore): a missing directory is no backup, not an empty
        one.  ``create=None``: made when first written or locked (a task
        refused before it starts leaves nothing behind)."""
        self.root = Path(root).expanduser()
        if create is False and not self.root.is_dir():
            raise StorageError(f"no backup at {self.root}: the directory does not exist (is the task's "
                               f"storage setting right? has the backup task run?)")
        if create is None:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create backup directory {self.root}: {e.strerror}") from None

    def describe(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _tmp(self, p: Path) -> Path:
        return p.with_name(f".{p.name}.tmp{os.getpid()}")

    def put(self, key: str, data: bytes) -> None:
        with self.writer(key) as f:
            f.write(data)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """The temp file is locked (flock) while written: ``clean_temp`` in
        another process leaves it alone; the lock dies with its process."""
        p = self.path(key)
        tmp = self._tmp(p)
        try:
            for attempt in (1, 2):  # a sweep may remove the fresh, empty directory once
                p.parent.mkdir(parents=True, exist_ok=True)
                try:
                    f = open(tmp, "wb")  # noqa: SIM115 - closed below
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        except OSError as e:
            raise StorageError(f"cannot write {p}: {e.strerror}") from None
        ok = False
        try:
            yield f
            f.flush()
            os.fsync(f.fileno())
            ok = True
        finally:
            f.close()
            if ok:
                os.replace(tmp, p)
                fsync_dir(p.parent)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except OSError as e:
            raise StorageError(f"cannot read backup object {key}: {e.strerror}") from None

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        try:
            f = open(self.path(key), "rb")  # noqa: SIM115
        except OSError as e:
            raise StorageError(f"cannot read backup object {key}: {e.strerror}") from None
        with f:
            yield f

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        out = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root)
            for fn in filenames:
                if not fn.startswith("."):
                    out.append(str(rel / fn) if str(rel) != "." else fn)
        return sorted(out)

    def delete(self, key: str) -> None:
        p = self.path(key)
        try:
            p.unlink()
        except FileNotFoundError:
            return
        except OSError as e:
            raise StorageError(f"cannot delete backup object {key}: {e.strerror}") from None
        with contextlib.suppress(OSError):
            fsync_dir(p.parent)

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except OSError as e:
            raise StorageError(f"no backup object {key}: {e.strerror}") from None

    def lock(self, owner: str, refused=None):
        """Exclusive writer lock (``.lock``, flock): one backup task per storage.
        Returns the open lock file; closing it releases the lock.  Another
        process holding it: ``refused(its owner, its pid)`` is raised (by
        default: "backup storage ... is in use by ...")."""
        from console.engine.dirlock import lock_dir

        def in_use(holder: str, pid: int | None) -> UserError:
            who = f"{holder or 'another process'}" + (f" (pid {pid})" if pid else "")
            return StorageError(f"backup storage {self.root} is in use by {who}; one backup "
                                f"task per storage")

        return lock_dir(self.root, owner, refused or in_use)

    def remove_tree(self, prefix: str) -> None:
        shutil.rmtree(self.root / _check_key(prefix), ignore_errors=True)

    def clean_temp(self, prefix: str = "") -> int:
        n = 0
        for dirpath, _, filenames in os.walk(self.root / prefix if prefix else self.root):
            for fn in filenames:
                if fn.startswith(".") and ".tmp" in fn and _remove_unlocked(os.path.join(dirpath, fn)):
                    n += 1
        return n

    def remove_empty_dirs(self, prefix: str) -> int:
        n = 0
        top = self.root / _check_key(prefix)
        for dirpath, _, _ in os.walk(top, topdown=False):
            if Path(dirpath) != top:
                with contextlib.suppress(OSError):  # not empty: kept
                    os.rmdir(dirpath)
                    n += 1
        return n


def _remove_unlocked(path: str) -> bool:
    """Unlink ``path`` unless a live writer holds its lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def sha256_of(storage: Storage, key: str) -> str:
    h = hashlib.sha256()
    with storage.reader(key) as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()
