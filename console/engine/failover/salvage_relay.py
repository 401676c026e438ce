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
* ``apply``: the events of exactly those transactions are replayed on the
  candidate by the restore's pipelined replayer (``engine/replay/``: row
  events as BINLOG statements, a batch of statements per round trip), each
  with its original GTID set in the session.  (Until this round they went
  through temporary binlog files, ``mariadb-binlog`` and the ``mariadb``
  client: a round trip per statement, ~18 ms per transaction.)  Only what
  ``scan`` read is applied: the relay's current file may end in a not yet
  durable (torn) transaction, and several subdirectories may hold files of
  the same name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from console.engine.failover.context import ClusterOps
from console.engine.failover.journal import Journal
from console.engine.failover.salvage_binlog import BinlogFilesSource, binlog_files, start_of
from console.engine.relay.reader import RelayReader
from console.engine.relay.store import META, RelayStore
from console.engine.replay.replayer import Replayer
from console.engine.replay.txn import Txn
from console.mysql import gtid as gtidmod
from console.mysql.binlog import events as E
from console.mysql.connection import Endpoint, close_quietly, connect
from console.mysql.gtid import Gtid, GtidPosition, GtidSet

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
        pos = GtidPosition.from_set(start).text()
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

    def plan(self, ops: ClusterOps, candidate: str, missing: GtidSet, journal: Journal,
             timeout: float) -> None:
        try:
            held = self.holds(missing)
        except Exception as e:  # noqa: BLE001 - a plan shows the problem, it does not fail
            journal.plan("salvage: apply relay events", candidate, [], f"{self.name}: unreadable: {e}")
            return
        journal.plan("salvage: apply relay events", candidate,
                     [f"-- RelayReader({self.root}).events(gtid=<candidate position>) -> replay on "
                      f"{candidate} keeping each GTID"],
                     f"{self.name} holds {held.describe() or 'nothing'} the candidate lacks (now; "
                     f"re-read after relay logs are applied)")

    def apply(self, ops: ClusterOps, candidate: str, wanted: GtidSet, journal: Journal,
              timeout: float) -> None:
        ep = ops.endpoint(candidate)
        with journal.step("salvage: apply relay events", candidate) as s:
            got, segments = self.scan(start_of(wanted), wanted, pin=True)
            s.sql.append(f"-- RelayReader({self.root}).events(gtid='{start_of(wanted)}'): "
                         f"{got.describe()} -> replay on {ep.host}:{ep.port} keeping each GTID")
            if got.is_empty():
                raise RuntimeError(f"{self.name} no longer holds {wanted.describe()}")
            replay_with_gtids(ep, segments, timeout)
            s.detail = f"applied {got.describe()} from {self.name}"


def transactions(segment: list[bytes]) -> Iterable[Txn]:
    """The transactions of a ``scan`` segment (its FORMAT_DESCRIPTION first,
    then whole groups, each starting with its GTID event)."""
    group: list[bytes] = []
    for ev in segment[1:]:
        if ev[4] == E.GTID and group:
            yield _txn(group)
            group = []
        group.append(ev)
    if group:
        yield _txn(group)


def _txn(group: list[bytes]) -> Txn:
    head = E.HEADER.unpack_from(group[0], 0)
    seq, domain, _ = E.gtid_body(group[0])
    return Txn(domain=domain, server_id=head[2], seq=seq, commit_ts=head[0], data=b"".join(group))


def replay_with_gtids(ep: Endpoint, segments: list[list[bytes]], timeout: float) -> int:
    """Replay the transactions of ``segments`` on ``ep``, each keeping its
    GTID; returns how many.  The first error raises (ReplayError)."""
    conn = connect(ep, read_timeout=timeout, write_timeout=timeout, max_allowed_packet=1 << 30)
    try:
        rp = Replayer(conn, keep_gtids=True)
        for seg in segments:
            rp.set_fde(seg[0])
            for t in transactions(seg):
                rp.add(t)
        rp.flush()
        return rp.transactions
    finally:
        close_quietly(conn)


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


def sources_from_dirs(dirs: Iterable[str]) -> list:
    """A source per directory (a directory given twice counts once): a relay
    task's directory (it has relay.meta) is read with the relay reader,
    anything else as numbered binlog files."""
    out, seen = [], set()
    for d in dirs:
        key = os.path.realpath(Path(d).expanduser())
        if key in seen:
            continue
        seen.add(key)
        out.append(RelaySource(str(d), Path(d)) if is_relay_dir(d)
                   else BinlogFilesSource(binlog_files(d), "binlog files"))
    return out
