"""The migration checkpoint: only what was actually applied.

``copy.last`` is the upper bound of the last committed chunk and
``applied_pos`` the GTID position of the last transaction whose changes
were committed to the ghost.  Written atomically (fsync + rename)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
from pathlib import Path
from typing import Any

from console.engine.state import read_json, write_json_atomic
from console.errors import UserError

VERSION = 1


def enc(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, decimal.Decimal):
        return {"dec": str(v)}
    if isinstance(v, dt.datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, dt.date):
        return {"d": v.isoformat()}
    if isinstance(v, dt.timedelta):
        return {"td": v.total_seconds()}
    if isinstance(v, (bytes, bytearray)):
        return {"b64": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    raise TypeError(f"cannot store key value of type {type(v).__name__}")


def dec(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(dec(x) for x in v)
    if isinstance(v, dict):
        (k, x), = v.items()
        return {"dec": decimal.Decimal, "dt": dt.datetime.fromisoformat,
                "d": dt.date.fromisoformat, "td": lambda s: dt.timedelta(seconds=s),
                "b64": base64.b64decode}[k](x)
    return v


def fingerprint(database: str, table: str, alter: str) -> str:
    return hashlib.sha256(f"{database}\0{table}\0{' '.join(alter.split())}".encode()).hexdigest()[:16]


class Checkpoint:
    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def record(*, database: str, table: str, alter: str, applied_pos: str,
               copy_min, copy_max, copy_last, rows_copied: int, copy_done: bool,
               run: str = "") -> dict:
        """The checkpoint as stored (JSON-safe): in the file, and in a shared
        fleet's coordinator, from which another engine resumes the run."""
        return {
            "version": VERSION, "database": database, "table": table, "run": run,
            "fingerprint": fingerprint(database, table, alter), "applied_pos": applied_pos,
            "copy": {"min": enc(copy_min), "max": enc(copy_max), "last": enc(copy_last),
                     "rows": rows_copied, "done": copy_done},
        }

    def save(self, **fields) -> dict:
        rec = self.record(**fields)
        self.write(rec)
        return rec

    def write(self, rec: dict) -> None:
        write_json_atomic(self.path, rec)

    def exists(self) -> bool:
        return self.path.exists()

    def load(self, database: str, table: str, alter: str) -> dict:
        raw = read_json(self.path)
        if raw is None:
            raise UserError(f"cannot resume: no checkpoint at {self.path}")
        if raw.get("version") != VERSION:
            raise UserError(f"cannot resume: checkpoint {self.path} has version {raw.get('version')}")
        if raw.get("fingerprint") != fingerprint(database, table, alter):
            raise UserError(f"cannot resume: checkpoint {self.path} belongs to another table or "
                            f"ALTER; give the same --database, --table and --alter")
        c = raw["copy"]
        return {"applied_pos": raw["applied_pos"], "min": dec(c["min"]), "max": dec(c["max"]),
                "last": dec(c["last"]), "rows": int(c["rows"]), "done": bool(c["done"]),
                "run": raw.get("run", "")}

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
