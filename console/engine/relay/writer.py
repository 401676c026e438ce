"""The relay's writer side: the thread that takes the session's batches
from the pipe and writes them to the relay files (one ``BinlogFileWriter``
per upstream file, in the current subdirectory), answers semi-sync ACKs for
what is durable, fsyncs and then publishes the last transaction boundary in
``relay.meta`` (durable before visible), purges by retention, and at the end
of a session closes the file and cuts the relay back to ``relay.meta``.

``RelayWriter`` is mixed into ``RelayTask`` (``task.py``), whose ``__init__``
holds the state it uses (``writer``, ``_writer_key``, ``_cand``, the
counters)."""

from __future__ import annotations

import time

from console.engine.relay.pipe import BytePipe
from console.errors import UserError
from console.mysql.binlog.client import Batch
from console.mysql.binlog.writer import BinlogFileWriter


class RelayWriter:
    """The writer side of ``RelayTask``."""

    def _write_loop(self, q: BytePipe) -> None:
        while True:
            batch = q.get()
            if batch is None:
                return
            try:
                self._handle(batch)
            except BaseException as e:  # noqa: BLE001 - handed to the session thread
                self._werr = e
                q.break_()
                return

    def _handle(self, batch: Batch) -> None:
        if batch.data:
            self.guard_write()  # a fenced owner (its lease lost) writes nothing more
            meta = self.meta
            assert meta is not None
            key = (meta.subdir, batch.file)
            if self._writer_key != key:
                self._close_writer(sync=True)
                self.writer = BinlogFileWriter(self.store.subdir_path(meta.subdir) / batch.file)
                self._writer_key = key
            w = self.writer
            assert w is not None
            base = w.offset
            w.write(batch.data)
            if batch.boundary_end >= 0:
                self._cand = (batch.file, batch.boundary_pos, base + batch.boundary_end,
                              batch.gtid_state.text())
            self._events += batch.count
            self._bytes += len(batch.data)
            self._last_ts = batch.last_ts or self._last_ts
            if batch.need_ack:
                self._ack_pending = True
            if self._ack_pending and batch.boundary_end >= 0:
                # semi-sync: the upstream waits for us; ACK only what is durable
                self._flush()
                if self.client is not None:
                    self.client.send_ack(batch.file, batch.boundary_pos)
                    self._acks += 1
                self._ack_pending = False
            if batch.rotate_to:
                self._close_writer(sync=True)
                self._cand = (batch.rotate_to, 4, 4, batch.gtid_state.text())
                self._flush()
        self._recv = (batch.file, batch.upstream_pos)
        now = time.monotonic()
        self._meter.add(self._events, self._bytes, now)
        if batch.idle or batch.eof or now - self._last_flush >= self.opts.flush_interval:
            self._flush()
        if now - self._last_purge > 60:
            self._last_purge = now
            self._retention_purge()

    def _flush(self) -> None:
        """fsync the relay file, then publish the last boundary in relay.meta."""
        self._last_flush = time.monotonic()
        cand, meta = self._cand, self.meta
        if cand is None or meta is None:
            return
        file, pos, relay_pos, gtid = cand
        if (meta.file, meta.pos, meta.relay_pos) == (file, pos, relay_pos):
            return
        self.guard_write()
        if self.writer is not None:
            self.writer.sync()
            self.guard_write()   # the fsync may take long on a busy disk: again before the meta
        self.meta = meta.with_position(file, pos, relay_pos, gtid)
        self.store.save_meta(self.meta)
        self._publish_position()

    def _publish_position(self, force: bool = False) -> None:
        """relay.meta's position to the coordinator (shared: at most twice a
        second), which refuses it from a stale owner or when it moves back."""
        meta, now = self.meta, time.monotonic()
        if meta is None or not self.leased or (not force and now - self._last_publish < 0.5):
            return
        self._last_publish = now
        n = int(meta.subdir.rsplit(".", 1)[-1]) if meta.subdir.rsplit(".", 1)[-1].isdigit() else 0
        self.publish_checkpoint("relay", [n, meta.subdir, meta.file, meta.pos],
                                {"subdir": meta.subdir, "file": meta.file, "pos": meta.pos,
                                 "relay_pos": meta.relay_pos, "gtid": meta.gtid},
                                lineage=f"relay directory {self.store.root}")

    def _close_writer(self, sync: bool) -> None:
        w, self.writer, self._writer_key = self.writer, None, None
        if w is not None:
            if sync:
                w.sync()
            w.close()

    def _end_session(self) -> None:
        """Close the connection and the file; cut the relay back to the meta."""
        with self._io_lock:
            c, self.client = self.client, None
            self._connected = False
            if c is not None:
                c.close()
            self._close_writer(sync=False)
            self._cand = None
            if not self.may_write():
                return  # fenced: the files are the new owner's now, never cut back
            try:
                self.meta = self.store.recover()
            except UserError as e:
                self.set_error(str(e))

    def _retention_purge(self) -> None:
        if self.may_write() and (self.opts.max_age_hours > 0 or self.opts.max_size_mb > 0):
            removed = self.store.purge(max_age=self.opts.max_age_hours * 3600,
                                       max_bytes=int(self.opts.max_size_mb * 1024 * 1024))
            if removed and self.engine:
                self.engine.audit("engine", "purge", self.task_id, "ok",
                                  f"{len(removed)} relay file(s) by retention")

