"""Salvage from a relay task's directory (the relay issue's reader API).

A relay task keeps a byte-exact copy of the primary's binlog on this machine
and records in ``relay.meta`` the GTID position it has durably (fsynced);
with ``semi_sync = true`` the primary committed nothing the relay did not
acknowledge, so that position is everything the primary ever acknowledged.

* ``position()``: the durable GTID position (relay.meta): it counts in what
  the survivors hold (ranking, the ``known`` set, the lost report).
* ``holds(missing)``: the GTIDs of the transactions the relay files really
  contain after the candidate's position (``RelayReader.events(gtid=...)``:
  only the durable part, whole groups, across switch-master subdirectories).
* ``apply``: the events of exactly those transactions are written, with the
  FORMAT_DESCRIPTION of the file they came from, into temporary binlog files
  (0600, in a private temporary directory); ``mariadb-binlog`` turns them
  into SQL that sets each transaction's original GTID, and the ``mariadb``
  client runs it on the candidate (the same path as ``--binlog-dir``).
  The files are never handed to ``mariadb-binlog`` directly: the relay's
  current file may end in a not yet durable (torn) transaction, and several
  subdirectories may hold files of the same name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from console.engine.failover.context import ClusterOps
from console.engine.failover.journal import Journal
from console.engine.failover.salvage_binlog import (
    BINLOG_MAGIC,
    apply_sql_text,
    decode_binlogs,
    start_of,
)
from console.engine.relay.reader import RelayReader
from console.engine.relay.store import META, RelayStore
from console.mysql import gtid as gtidmod
from console.mysql.binlog import events as E
from console.mysql.gtid import Gtid, GtidSet

PIN = "failover-salvage"


def is_relay_dir(directory: str | os.PathLike) -> bool:
    return (Path(directory) / META).is_file()


@dataclass
class RelaySource:
    label: str  # the relay task's name (or the directory)
    root: Path
    _scan: tuple[str, GtidSet, list[list[bytes]]] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"relay {self.label} ({self.root})"

    def meta(self):
        return RelayStore(self.root).load_meta()

    def position(self) -> GtidSet:
        """The relay's durable GTID position as a set (empty when it relayed nothing)."""
        m = self.meta()
        return gtidmod.parse(m.gtid if m else "", gtidmod.MARIADB)

    def upstream(self) -> str:
        m = self.meta()
        return m.server if m else ""

    def scan(self, start: GtidSet, wanted: GtidSet | None, pin: bool = False
             ) -> tuple[GtidSet, list[list[bytes]]]:
        """The GTIDs of the relayed transactions after ``start`` (all of them, or
        those in ``wanted``) and their events, in segments that each begin with
        the FORMAT_DESCRIPTION of the relay file they come from."""
        key = f"{start.format()}|{wanted.format() if wanted is not None else '*'}"
        if self._scan is not None and self._scan[0] == key:
            return self._scan[1], self._scan[2]
        found: list[Gtid] = []
        segments: list[list[bytes]] = []
        group: list[bytes] | None = None
        pos = ",".join(str(g) for g in start.last_gtids())
        for ev in RelayReader(self.root).events(gtid=pos, pin=PIN if pin else ""):
            if ev.type == E.FORMAT_DESCRIPTION:
                segments.append([ev.data])
                group = None
                continue
            if ev.type == E.GTID:
                group = []
            if group is None:
                continue  # GTID_LIST, BINLOG_CHECKPOINT, ROTATE...: nothing to apply
            group.append(ev.data)
            if not ev.boundary:
                continue
            g = Gtid.parse(ev.gtid) if ev.gtid else None
            if g is not None and (wanted is None or wanted.has(g)) and segments:
                found.append(g)
                segments[-1].extend(group)
            group = None
        got = GtidSet.from_gtids(found) if found else GtidSet.empty(gtidmod.MARIADB)
        segments = [s for s in segments if len(s) > 1]
        self._scan = (key, got, segments)
        return got, segments

    # ---- SalvageSource ------------------------------------------------------------
    def holds(self, missing: GtidSet) -> GtidSet:
        if missing.is_empty() or missing.flavor not in (None, gtidmod.MARIADB) or self.meta() is None:
            return GtidSet.empty(missing.flavor)
        got, _ = self.scan(start_of(missing), missing)
        return missing.intersection(got)

    def apply(self, ops: ClusterOps, candidate: str, wanted: GtidSet, journal: Journal,
              timeout: float) -> None:
        ep = ops.endpoint(candidate)
        with journal.step("salvage: apply relay events", candidate) as s:
            got, segments = self.scan(start_of(wanted), wanted, pin=True)
            s.sql.append(f"-- RelayReader({self.root}).events(gtid='{start_of(wanted)}'): "
                         f"{got.describe()} -> mariadb-binlog | mariadb -h {ep.host} -P {ep.port}")
            if got.is_empty():
                raise RuntimeError(f"{self.name} no longer holds {wanted.describe()}")
            with tempfile.TemporaryDirectory(prefix="dbops-relay-salvage-") as tmp:
                files = []
                for i, seg in enumerate(segments):
                    p = Path(tmp) / f"salvage.{i + 1:06d}"
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(BINLOG_MAGIC)
                        for ev in seg:
                            f.write(ev)
                    files.append(p)
                text = decode_binlogs(files, [])
            apply_sql_text(ops, candidate, text, timeout)
            s.detail = f"applied {got.describe()} from {self.name}"


def survivor_positions(sources: Iterable[RelaySource], on_error=None) -> dict[str, GtidSet]:
    """Each relay's durable GTID position, by source name.  An unreadable
    relay is left out (and handed to ``on_error(source, exc)``): it counts
    for nothing, it does not stop a failover."""
    out: dict[str, GtidSet] = {}
    for src in sources:
        try:
            out[src.name] = src.position()
        except Exception as e:  # noqa: BLE001 - reported by the caller, not fatal
            if on_error is not None:
                on_error(src, e)
    return out


def relay_sources(dirs: Iterable[tuple[str, str]]) -> list[RelaySource]:
    """A source per relay directory that has relayed something (a relay
    task that never ran has no relay.meta and is skipped: nothing to read)."""
    out, seen = [], set()
    for label, d in dirs:
        p = Path(d).expanduser()
        key = os.path.realpath(p)
        if key in seen or not is_relay_dir(p):
            continue
        seen.add(key)
        out.append(RelaySource(label, p))
    return out


def relay_dirs(config, cluster: str, engine=None) -> tuple[tuple[str, str], ...]:
    """(name, directory) of the relay tasks of ``cluster``: declared in the
    config (``[tasks.X] kind = "relay"``) and/or running in the engine."""
    out: list[tuple[str, str]] = []
    if engine is not None:
        for t in engine.tasks():
            store = getattr(t, "store", None)
            if t.kind == "relay" and getattr(t, "cluster", None) == cluster and store is not None:
                out.append((t.task_id, str(store.root)))
    for name, tc in (config.tasks.items() if config is not None else ()):
        if tc.kind == "relay" and tc.cluster == cluster:
            out.append((name, str(tc.options.relay_dir)))
    return tuple(out)
