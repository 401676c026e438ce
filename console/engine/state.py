"""The state directory: atomic files, checkpoints and the audit log.

Rule 4 of the house: durable before visible.  ``write_atomic`` writes a temp
file, fsyncs it, renames it over the target and fsyncs the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from console.errors import UserError


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes | str, mode: int = 0o644) -> None:
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default
    except ValueError as e:
        raise UserError(f"{path}: corrupt JSON ({e}); move it aside to start fresh") from None


@dataclass(frozen=True)
class AuditEntry:
    ts: float
    actor: str  # operator | engine | auto | cli
    action: str
    target: str
    outcome: str  # ok | refused | failed | started | info
    detail: str = ""

    def line(self) -> str:
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.ts))
        d = f" {self.detail}" if self.detail else ""
        return f"{t} {self.actor} {self.action} {self.target}: {self.outcome}{d}"


def task_dir_name(task_id: str) -> str:
    """A task id as a directory name: characters other than ASCII letters,
    digits, ``-``, ``_`` and ``.`` become ``_``; when any did, a short hash
    of the exact id is appended (``a b`` and ``a_b`` shared a directory)."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in task_id)
    if safe and safe == task_id and safe not in (".", ".."):
        return safe
    return f"{safe}-{hashlib.sha1(task_id.encode()).hexdigest()[:10]}"


def task_path(root: str | os.PathLike, task_id: str) -> Path:
    """A task's directory under the state directory ``root`` (not created)."""
    return Path(root).expanduser() / "tasks" / task_dir_name(task_id)


def _creatable(path: Path) -> str:
    """"" when ``path`` is a directory or could be made one, else why not."""
    p = path
    while not p.exists():
        if p.parent == p:
            return "no such file or directory"
        p = p.parent
    if not p.is_dir():
        return f"{p} is not a directory"
    if p != path:
        return "" if os.access(p, os.W_OK | os.X_OK) else f"{p} is not writable"
    return ""


class StateDir:
    """``state_dir/`` holds ``audit.log`` (JSON lines, appended and fsynced),
    ``tasks/<name>/`` per task, and whatever checkpoints tasks keep there.

    The directory is made when something is first written to it: a command
    refused before it did anything leaves nothing behind.  One that could
    never be made is refused at once."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        why = _creatable(self.root)
        if why:
            raise UserError(f"cannot create state directory {self.root}: {why}")
        self._lock = threading.Lock()
        self.audit_path = self.root / "audit.log"

    def ensure(self) -> Path:
        """The directory, made if it is not there yet."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create state directory {self.root}: {e.strerror}") from None
        return self.root

    def task_path(self, task_id: str) -> Path:
        """Where ``task_dir`` keeps a task's files (nothing is created)."""
        return task_path(self.root, task_id)

    def task_dir(self, task_id: str) -> Path:
        self.ensure()
        p = self.task_path(task_id)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def audit(self, entry: AuditEntry) -> None:
        line = json.dumps(asdict(entry), sort_keys=True) + "\n"
        self.ensure()
        with self._lock:
            fd = os.open(self.audit_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_audit(self, limit: int | None = None) -> list[AuditEntry]:
        try:
            lines = self.audit_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        if limit:
            lines = lines[-limit:]
        out = []
        for ln in lines:
            try:
                out.append(AuditEntry(**json.loads(ln)))
            except (ValueError, TypeError):
                continue
        return out
