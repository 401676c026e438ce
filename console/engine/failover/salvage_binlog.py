"""Salvage from binary-log files on this machine: the relay task's relay
files (byte-exact copies of the primary's binlog) or the dead primary's own
binlogs (copied or mounted here).

``mariadb-binlog --start-position=<candidate's GTID position>`` prints every
transaction after what the candidate has, in the primary's domains only;
the GTIDs it prints say what the files hold; the same text is piped into the
``mariadb`` client on the candidate, so each transaction keeps its original
GTID (the output sets ``gtid_domain_id``/``server_id``/``gtid_seq_no``).  The
password goes in an in-memory option file, never on disk or a command line.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from console.engine.failover.context import ClusterOps
from console.engine.failover.journal import Journal
from console.errors import UserError
from console.mysql import gtid as gtidmod
from console.mysql.gtid import Gtid, GtidPosition, GtidSet
from console.mysql.tools import client_options, need

_GTID_LINE = re.compile(rb"^#\d{6}\s.*\sGTID (\d+)-(\d+)-(\d+)", re.M)


def binlog_files(directory: str | os.PathLike) -> list[Path]:
    """The numbered binlog/relay files of a directory, in order."""
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"--binlog-dir {d}: not a directory")
    files = sorted(p for p in d.iterdir() if re.fullmatch(r".+\.\d{6,}", p.name) and _is_binlog(p))
    if not files:
        raise UserError(f"--binlog-dir {d}: no numbered binlog files (NAME.000001) in it")
    return files


BINLOG_MAGIC = b"\xfebin"


def _is_binlog(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return p.is_file() and f.read(4) == BINLOG_MAGIC
    except OSError:
        return False


@dataclass
class BinlogFilesSource:
    files: list[Path]
    label: str = "binlog files"
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return f"{self.label} ({self.files[0].parent})" if self.files else self.label

    def _decode(self, start: GtidSet) -> bytes:
        key = start.format()
        if key not in self._cache:
            args = []
            if start.keys():
                args += [f"--start-position={GtidPosition.from_set(start)}",
                         f"--do-domain-ids={','.join(str(k) for k in start.keys())}"]
            self._cache[key] = decode_binlogs(self.files, args)
        return self._cache[key]

    def gtids_after(self, start: GtidSet) -> GtidSet:
        out = GtidSet.empty(gtidmod.MARIADB)
        found = [Gtid(int(d), int(s), int(q)) for d, s, q in _GTID_LINE.findall(self._decode(start))]
        return out.union(GtidSet.from_gtids(found)) if found else out

    # ---- SalvageSource ----------------------------------------------------------
    def holds(self, missing: GtidSet) -> GtidSet:
        self._start = start_of(missing)
        return missing.intersection(self.gtids_after(self._start))

    def plan(self, ops: ClusterOps, candidate: str, missing: GtidSet, journal: Journal,
             timeout: float) -> None:
        journal.plan("salvage: apply binlog events", candidate,
                     [f"-- mariadb-binlog --start-position=<candidate position> "
                      f"{' '.join(f.name for f in self.files)} | mariadb -h {candidate}"],
                     f"whatever {self.name} holds beyond the candidate's position")

    def apply(self, ops: ClusterOps, candidate: str, wanted: GtidSet, journal: Journal,
              timeout: float) -> None:
        text = self._decode(self._start)
        ep = ops.endpoint(candidate)
        with journal.step("salvage: apply binlog events", candidate) as s:
            s.sql.append(f"-- mariadb-binlog --start-position={self._start} "
                         f"{' '.join(f.name for f in self.files)} | mariadb -h {ep.host} -P {ep.port}")
            apply_sql_text(ops, candidate, text, timeout)
            s.detail = f"applied {wanted.describe()} from {self.name}"


def decode_binlogs(files: Iterable[Path], args: list[str]) -> bytes:
    """``mariadb-binlog`` output (SQL text) for ``files``; every transaction
    in it sets its original GTID (domain, server id, seq) before it runs."""
    tool = need("mariadb-binlog", "mysqlbinlog")
    r = subprocess.run([tool, "--skip-gtid-strict-mode", *args, *(str(f) for f in files)],
                       capture_output=True, timeout=300)
    if r.returncode != 0:
        err = (r.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise UserError(f"mariadb-binlog: {err}")
    return r.stdout


def apply_sql_text(ops: ClusterOps, candidate: str, text: bytes, timeout: float) -> None:
    """Run ``mariadb-binlog`` output on the candidate with the ``mariadb``
    client (password in an in-memory option file, never on disk or in argv)."""
    ep = ops.endpoint(candidate)
    client = need("mariadb", "mysql")
    with client_options(ep) as cred:
        r = subprocess.run([client, cred.arg, "--binary-mode"], pass_fds=cred.pass_fds,
                           input=text, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        err = (r.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise UserError(f"applying binlog events on {candidate}: {err}")


def start_of(missing: GtidSet) -> GtidSet:
    """The position just before the first missing GTID, per domain."""
    gt = []
    for d, iv in missing:
        lo = iv[0][0]
        gt.append(Gtid(int(d), missing.server_of(int(d)) or 0, lo - 1))
    return GtidSet.from_position(g for g in gt if g.seq > 0) if gt else missing
