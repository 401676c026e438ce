"""The relay directory: subdirectories per upstream, index, meta, pins, purge.

Layout (like the TiDB DM relay unit)::

    RELAY_DIR/
      server-uuid.index          one subdirectory name per line, oldest first
      relay.meta                 JSON: where the durable relay ends (see RelayMeta)
      pins/NAME.json             readers that still need files (purge keeps them)
      <identity>.000001/         one per upstream server identity, suffix increasing
        mysql-bin.000007         relay files, named and laid out like the upstream's
        mysql-bin.000008

``relay.meta`` is written atomically (temp file, fsync, rename, fsync dir)
and only at transaction boundaries, after the relay file was fsynced.  On
start, ``recover()`` cuts every relay file back to what the meta vouches for:
the torn tail of the current file is truncated and files written after the
last meta update are removed, so streaming resumes exactly at the meta.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from console.engine.state import fsync_dir, read_json, write_atomic, write_json_atomic
from console.errors import UserError

INDEX = "server-uuid.index"
META = "relay.meta"
_SUFFIX = re.compile(r"^(.*)\.(\d{6,})$")


class RelayError(UserError):
    pass


@dataclass(frozen=True)
class RelayMeta:
    """Durable end of the relay.  ``file`` is both the upstream binlog name and
    the relay file name ("" before the first file of a subdirectory: the next
    start is then by GTID); ``pos`` is the upstream position after the last
    complete transaction and ``relay_pos`` the same place in our file (they
    differ only in a subdirectory that was started by GTID)."""

    subdir: str
    identity: str
    server: str
    file: str
    pos: int
    relay_pos: int
    gtid: str
    updated: float = 0.0

    def with_position(self, file: str, pos: int, relay_pos: int, gtid: str) -> RelayMeta:
        return replace(self, file=file, pos=pos, relay_pos=relay_pos, gtid=gtid, updated=time.time())


def file_key(name: str) -> tuple[str, int, str]:
    """Sort key for binlog names: numeric on the extension (.999999 < .1000000)."""
    base, _, ext = name.rpartition(".")
    return (base, int(ext), name) if ext.isdigit() else (name, -1, name)


@dataclass(frozen=True)
class RelayFile:
    subdir: str
    name: str
    path: Path
    size: int
    mtime: float


class RelayStore:
    """A relay directory.  Reading it creates nothing; the relay task makes
    it when it takes its lock (``lock``: one writer per directory)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self._made = False

    def create(self) -> None:
        """Make the directory (and pins/) if it is not there: once per store."""
        if self._made:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "pins").mkdir(exist_ok=True)
        except OSError as e:
            raise RelayError(f"cannot create relay directory {self.root}: {e.strerror}") from None
        self._made = True

    def lock(self, owner: str):
        """The writer's lock (``.lock``, flock) for this process's life, the
        directory made first; returns the open lock file (closing it releases
        the lock).  Held by another process: one line naming its pid."""
        from console.engine.dirlock import lock_dir

        def in_use(holder: str, pid: int | None) -> RelayError:
            by = f"pid {pid}" if pid else "another process"
            return RelayError(f"relay directory {self.root} is in use by {by}"
                              + (f" ({holder})" if holder and pid else "")
                              + ": one relay per directory; stop that one first or use another directory")

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RelayError(f"cannot create relay directory {self.root}: {e.strerror}") from None
        f = lock_dir(self.root, owner, in_use)
        self.create()
        return f

    # ---- index and subdirectories ----------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.root / INDEX

    @property
    def meta_path(self) -> Path:
        return self.root / META

    def subdirs(self) -> list[str]:
        try:
            return [ln.strip() for ln in self.index_path.read_text().splitlines() if ln.strip()]
        except FileNotFoundError:
            return []

    def new_subdir(self, identity: str) -> str:
        self.create()
        subs = self.subdirs()
        n = 1
        if subs:
            m = _SUFFIX.match(subs[-1])
            n = int(m.group(2)) + 1 if m else len(subs) + 1
        name = f"{identity}.{n:06d}"
        (self.root / name).mkdir(exist_ok=True)
        fsync_dir(self.root)
        write_atomic(self.index_path, "".join(s + "\n" for s in subs + [name]))
        return name

    def subdir_path(self, subdir: str) -> Path:
        return self.root / subdir

    def files(self, subdir: str) -> list[RelayFile]:
        d = self.root / subdir
        out = []
        try:
            names = [n for n in os.listdir(d) if not n.startswith(".")]
        except FileNotFoundError:
            return []
        for n in sorted(names, key=file_key):
            try:
                st = (d / n).stat()
            except FileNotFoundError:  # purged or cut back meanwhile (status runs concurrently)
                continue
            out.append(RelayFile(subdir, n, d / n, st.st_size, st.st_mtime))
        return out

    def all_files(self) -> list[RelayFile]:
        return [f for s in self.subdirs() for f in self.files(s)]

    # ---- meta ---------------------------------------------------------------------

    def load_meta(self) -> RelayMeta | None:
        raw = read_json(self.meta_path)
        if raw is None:
            return None
        try:
            return RelayMeta(**raw)
        except TypeError:
            raise RelayError(f"{self.meta_path}: not a relay meta file; move it aside") from None

    def save_meta(self, meta: RelayMeta) -> None:
        self.create()
        write_json_atomic(self.meta_path, asdict(meta))

    # ---- crash recovery -------------------------------------------------------------

    def recover(self) -> RelayMeta | None:
        """Cut the relay back to the meta; returns the meta (None when empty)."""
        meta = self.load_meta()
        if meta is None:
            for s in self.subdirs():  # files without a meta were never durable
                for f in self.files(s):
                    f.path.unlink()
            return None
        subs = self.subdirs()
        if meta.subdir not in subs:
            raise RelayError(f"{self.meta_path}: subdirectory {meta.subdir} is not in {INDEX}")
        # subdirectories opened after the meta's one (a switch that never became durable)
        for s in subs[subs.index(meta.subdir) + 1:]:
            for f in self.files(s):
                f.path.unlink()
            try:
                (self.root / s).rmdir()
            except OSError:
                pass
        if subs[-1] != meta.subdir:
            write_atomic(self.index_path, "".join(s + "\n" for s in subs[:subs.index(meta.subdir) + 1]))
        for f in self.files(meta.subdir):
            if not meta.file or file_key(f.name) > file_key(meta.file):
                f.path.unlink()
            elif f.name == meta.file:
                if f.size < meta.relay_pos <= 4:  # created, magic not yet written
                    f.path.unlink()
                elif f.size < meta.relay_pos:
                    raise RelayError(f"{f.path} is {f.size} bytes but {META} vouches for "
                                     f"{meta.relay_pos}: the relay directory was damaged")
                if f.size > meta.relay_pos:
                    fd = os.open(f.path, os.O_WRONLY)
                    try:
                        os.ftruncate(fd, max(meta.relay_pos, 0))
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        fsync_dir(self.root / meta.subdir)
        return meta

    # ---- pins and purge -----------------------------------------------------------------

    def pin(self, reader: str, subdir: str, file: str) -> None:
        """Record that ``reader`` still needs ``subdir/file`` and everything after it."""
        self.create()
        write_json_atomic(self.root / "pins" / f"{_safe(reader)}.json",
                          {"reader": reader, "subdir": subdir, "file": file, "at": time.time()})

    def unpin(self, reader: str) -> None:
        try:
            (self.root / "pins" / f"{_safe(reader)}.json").unlink()
        except FileNotFoundError:
            pass

    def pins(self) -> list[dict]:
        out: list[dict] = []
        for p in sorted((self.root / "pins").glob("*.json")):
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def _order(self, subdir: str, name: str, subs: list[str]) -> tuple[int, tuple]:
        return (subs.index(subdir) if subdir in subs else -1, file_key(name))

    def purge(self, *, max_age: float = 0.0, max_bytes: int = 0, before: str = "",
              everything_old: bool = False, now: float | None = None) -> list[RelayFile]:
        """Remove old relay files; returns what was removed.

        ``max_age`` (seconds, by mtime) and ``max_bytes`` (total size) are the
        retention rules; ``before`` removes files older than that file (name
        or ``subdir/name``); ``everything_old`` removes all but the current
        file.  Never removed: the file the relay writes (the meta's) and any
        file at or after the oldest pin of a reader."""
        now = time.time() if now is None else now
        meta = self.load_meta()
        subs = self.subdirs()
        files = self.all_files()
        limit = None  # files at or after this order are protected
        if meta and meta.file:
            limit = self._order(meta.subdir, meta.file, subs)
        elif meta:
            limit = (subs.index(meta.subdir) if meta.subdir in subs else len(subs), ("", -1, ""))
        for p in self.pins():
            o = self._order(p.get("subdir", ""), p.get("file", ""), subs)
            if limit is None or o < limit:
                limit = o
        candidates = [f for f in files if limit is None or self._order(f.subdir, f.name, subs) < limit]
        if not meta:
            candidates = []
        doomed: list[RelayFile] = []
        if everything_old:
            doomed = list(candidates)
        if before:
            b_sub, _, b_name = before.rpartition("/")
            match = [f for f in files if f.name == b_name and (not b_sub or f.subdir == b_sub)]
            if not match:
                raise RelayError(f"purge: no relay file named {before!r}")
            bo = self._order(match[-1].subdir, match[-1].name, subs)
            doomed += [f for f in candidates if self._order(f.subdir, f.name, subs) < bo]
        if max_age > 0:
            doomed += [f for f in candidates if now - f.mtime > max_age]
        if max_bytes > 0:
            total = sum(f.size for f in files)
            for f in candidates:
                if total <= max_bytes:
                    break
                doomed.append(f)
                total -= f.size
        seen = set()
        removed = []
        for f in doomed:
            if f.path in seen:
                continue
            seen.add(f.path)
            try:
                f.path.unlink()
                removed.append(f)
            except FileNotFoundError:
                pass
        return removed


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
