"""The backup's segment publishing: the events of the stream (a dump
connection or relay files) collected into whole transactions, never one
already stored; the pending transactions published as one segment (data,
then manifest: ``catalog.py``), then the checkpoint moved past them
(durable before visible); and the checkpoint's caught-up time.

``SegmentPublisher`` is mixed into ``BackupTask`` (``logtask.py``), whose
sessions decide when to publish; its ``__init__`` holds the pending
segment's state."""

from __future__ import annotations

import time
from dataclasses import replace

from console.engine.backup import zstd
from console.engine.backup.catalog import Checkpoint
from console.engine.backup.segments import (
    SegmentManifest,
    advance,
    build_segment,
    domains_of,
    sha256,
)
from console.engine.backup.storage import StorageError
from console.engine.replay.txn import Txn
from console.mysql.binlog import events as E
from console.mysql.binlog.client import Batch, DumpError
from console.mysql.gtid import Gtid


class SegmentPublisher:
    """Transactions collected and published as segments, for ``BackupTask``."""

    def _consume(self, b: Batch) -> None:
        data = b.data
        if not data:
            return
        for off, size, typ, pos, boundary, g in b.events or ():
            self._feed(b.file, typ, data[off:off + size], pos, boundary, g)

    def _feed(self, file: str, typ: int, ev, pos: int, boundary: bool, g) -> None:
        """One event of the stream: collect whole transactions into ``_pending``."""
        if typ == E.FORMAT_DESCRIPTION:
            if self._pending and file != self._pending_file:
                self._publish()
            self._fde = bytes(ev)
            self._file = file
            self._last_pos = pos
            return
        if typ == E.GTID:
            self._cur = [ev]
            self._cur_start = self._last_pos
        elif self._cur:
            self._cur.append(ev)
        self._last_pos = pos
        if not boundary or g is None or not self._cur:
            if boundary:
                self._cur = []
            return
        domain, server, seq = g
        parts, self._cur = self._cur, []
        if self.gtid_state.contains(Gtid(domain, server, seq)):
            return  # already stored (never store a transaction twice)
        if self._pending and self._pending_file != file:
            self._publish()
        if not self._pending:
            self._pending_since = time.monotonic()
            self._pending_file = file
            self._pending_start = self._cur_start
        ts = E.HEADER.unpack_from(ev, 0)[0]
        t = Txn(domain, server, seq, ts, b"".join(bytes(p) for p in parts), pos)
        self._pending.append(t)
        self._pending_bytes += len(t.data)

    def _publish(self) -> None:
        """Store the pending transactions as one segment, then move the checkpoint."""
        txns = self._pending
        if not txns:
            return
        if not self._fde:
            raise DumpError("no FORMAT_DESCRIPTION event before the first transaction",
                            transient=True)
        raw = build_segment(self._fde, txns)
        stored = zstd.compress(raw)
        seq = self.cp.seq + 1
        new_state = advance(self.gtid_state, txns)
        man = SegmentManifest(
            seq=seq, source=self.source.address, source_id=self._source_id,
            binlog_file=self._pending_file, start_pos=self._pending_start, end_pos=txns[-1].end_pos,
            gtid_start=self.gtid_state.text(), gtid_end=new_state.text(),
            domains=domains_of(txns), first_ts=txns[0].commit_ts, last_ts=txns[-1].commit_ts,
            transactions=len(txns), raw_bytes=len(raw), stored_bytes=len(stored),
            sha256=sha256(stored), created=time.time(),
            key_id=getattr(self.storage, "key_id", ""))
        with self._io:
            self.guard_write()  # a fenced owner (its lease lost) publishes nothing more
            self.catalog.publish_segment(stored, man)
            self.gtid_state = new_state
            self.guard_write()
            self.cp = self.catalog.save_checkpoint(Checkpoint(
                seq=seq, gtid=man.gtid_end, source=man.source, binlog_file=man.binlog_file,
                binlog_pos=man.end_pos, last_event_ts=man.last_ts,
                caught_up_at=self.cp.caught_up_at, updated=time.time(), started=self.cp.started))
        self.publish_checkpoint("backup", [self.cp.seq], {"seq": self.cp.seq, "gtid": self.cp.gtid},
                                lineage=f"{self.storage.describe()} started {self.cp.started}")
        self._pending, self._pending_bytes = [], 0
        self._txns += len(txns)
        segs, seg_b, snap_b = self._stats
        self._stats = (segs + 1, seg_b + len(stored), snap_b)
        self._timeline.append((man.first_ts, man.last_ts, man.transactions))

    def _safe_publish(self) -> None:
        if not self.may_write():  # fenced: the new owner stores these from its checkpoint
            self._pending, self._pending_bytes = [], 0
            return
        try:
            self._publish()
        except (StorageError, zstd.ZstdError, DumpError, OSError) as e:
            self.set_error(f"could not store the last transactions: {e}")
            self._pending, self._pending_bytes = [], 0

    def _mark_caught_up(self) -> None:
        now = time.time()
        if now - self.cp.caught_up_at < 1.0:
            return
        with self._io:
            self.guard_write()
            self.cp = self.catalog.save_checkpoint(replace(self.cp, caught_up_at=now - 0.1,
                                                           updated=now))

