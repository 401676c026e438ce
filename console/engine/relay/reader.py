"""Reading events back from the relay files (for failover salvage and backup).

::

    reader = RelayReader("/var/lib/dbops/relay")
    for ev in reader.events(gtid="0-1-100"):        # transactions after 0-1-100
        ev.subdir, ev.file, ev.offset, ev.data, ev.boundary, ev.gtid, ev.position
    for ev in reader.events(file="mysql-bin.000007", pos=1234):   # from a relay position

Only the durable part of the relay is read: the current file stops at the
offset ``relay.meta`` vouches for, so a reader never sees a torn or not yet
fsynced transaction.  With ``gtid`` every transaction whose GTID is already in
that position is skipped (whole groups, like the server does), so events
continue without gap or duplicate across switch-master subdirectories.
``pin=NAME`` records the file being read so purge leaves it alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from console.engine.relay.store import RelayError, RelayFile, RelayStore, file_key
from console.mysql.binlog import events as E
from console.mysql.binlog.writer import read_events
from console.mysql.gtid import Gtid, GtidPosition


@dataclass(frozen=True)
class RelayEvent:
    subdir: str
    file: str
    offset: int        # where the event starts in the relay file
    log_pos: int       # upstream position after the event (header field)
    type: int
    server_id: int
    timestamp: int
    data: bytes
    boundary: bool     # ends a transaction (or stands outside one)
    gtid: str          # GTID of the transaction ended here ("" otherwise)
    position: str      # GTID position after this event (at boundaries)

    @property
    def end_offset(self) -> int:
        return self.offset + len(self.data)

    @property
    def type_name(self) -> str:
        return E.TYPE_NAMES.get(self.type, f"type{self.type}")


class RelayReader:
    def __init__(self, root: str | os.PathLike | RelayStore):
        self.store = root if isinstance(root, RelayStore) else RelayStore(root)

    def durable_end(self) -> tuple[str, str, int] | None:
        m = self.store.load_meta()
        return (m.subdir, m.file, m.relay_pos) if m else None

    def _start_file(self, files: list[RelayFile], target: GtidPosition) -> int:
        """Index of the last file before which ``target`` holds everything:
        its starting GTID_LIST is not past ``target``, and neither is the
        transaction before its first GTID.  The second test matters in a
        subdirectory started by GTID (after a switch): its first file is the
        new upstream's, whose GTID_LIST may be far older than what the relay
        wrote into it (only the transactions after the switch; those before
        are in the previous subdirectory)."""
        best = 0
        for i, f in enumerate(files):
            state, first = _file_start(f.path)
            if state is None:
                continue
            held = state <= target
            if first is not None:
                d, n = first
                held = held and (n <= 1 or (d in target.domains() and n - 1 <= target.seq(d)))
            if held:
                best = i
            else:
                break
        return best

    def events(self, *, gtid: str | None = None, subdir: str = "", file: str = "", pos: int = 4,
               pin: str = "") -> Iterator[RelayEvent]:
        files = self.store.all_files()
        end = self.durable_end()
        if end is None:
            return
        e_sub, e_file, e_pos = end
        subs = self.store.subdirs()
        if subs and e_sub in subs:  # nothing after the durable file
            cut = subs.index(e_sub)
            files = [f for f in files if subs.index(f.subdir) < cut or (
                f.subdir == e_sub and e_file and file_key(f.name) <= file_key(e_file))]
        target: GtidPosition | None = None
        start_i, start_pos = 0, 4
        if gtid is not None:
            target = GtidPosition.parse(gtid)
            start_i = self._start_file(files, target)
        elif file:
            match = [i for i, f in enumerate(files) if f.name == file and (not subdir or f.subdir == subdir)]
            if not match:
                raise RelayError(f"no relay file {subdir + '/' if subdir else ''}{file} "
                                 f"(purged, or never relayed)")
            start_i, start_pos = match[-1], pos
        tracker = E.GroupTracker(target)
        skipping = False
        kept: Gtid | None = None      # where a skipped group's domain was
        for f in files[start_i:]:
            if pin:
                self.store.pin(pin, f.subdir, f.name)
            stop = e_pos if (f.subdir == e_sub and f.name == e_file) else None
            first = start_pos if f is files[start_i] else 4
            crc_len = 4
            if not Path(f.path).exists():
                raise RelayError(f"relay file {f.subdir}/{f.name} was purged while being read")
            for off, ev in read_events(f.path, first, stop):
                h = E.parse_header(ev)
                if h.type == E.FORMAT_DESCRIPTION:
                    crc_len = 4 if E.fde_checksum_alg(ev) == E.CHECKSUM_CRC32 else 0
                    tracker.reset_group()
                    skipping = False
                if h.type == E.GTID and target is not None:
                    seq, domain, _ = E.gtid_body(ev)
                    skipping = target.contains(Gtid(domain, h.server_id, seq))
                    kept = tracker.state.gtid(domain)
                boundary = tracker.feed(h.type, ev, crc_len)
                if skipping:
                    if boundary:
                        skipping = False
                        if kept is not None:  # a skipped group never moves us back
                            tracker.state.advance(kept)
                    continue
                g = tracker.last_gtid if boundary else None
                yield RelayEvent(f.subdir, f.name, off, h.log_pos, h.type, h.server_id, h.timestamp,
                                 ev, boundary, f"{g[0]}-{g[1]}-{g[2]}" if g else "",
                                 tracker.state.text() if boundary else "")
        if pin:
            self.store.unpin(pin)


def _file_start(path: Path) -> tuple[GtidPosition | None, tuple[int, int] | None]:
    """(GTID state at the start of a relay file, from its GTID_LIST event;
    (domain, seq) of its first GTID event when it comes among its first
    events), None for what is not found."""
    state: GtidPosition | None = None
    try:
        for i, (_, ev) in enumerate(read_events(path, 4)):
            if ev[4] == E.GTID_LIST:
                state = GtidPosition()
                for d, s, q in E.gtid_list(ev):
                    state.put_newer(d, s, q)
            elif ev[4] == E.GTID:
                seq, domain, _ = E.gtid_body(ev)
                return state, (domain, seq)
            if i > 8:
                break
    except (OSError, E.BinlogFormatError):
        pass
    return state, None
