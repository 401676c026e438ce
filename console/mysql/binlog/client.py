"""A raw binlog dump client on a pymysql connection.

Usage::

    client = DumpClient(endpoint, server_id=4201, heartbeat=1.0)
    client.open(file="mysql-bin.000001", pos=4)        # or gtid="0-1-100"
    for batch in client.batches():                     # fast path (relay)
        write(batch.data)                                # events as in the upstream file
        if batch.boundary_end >= 0: ...                  # last transaction boundary in batch
    # or, one event at a time (slower, friendlier):
    for ev in client.events(): ev.file, ev.end_pos, ev.boundary, ev.gtid, ev.position

How it talks to the server (MariaDB; MySQL where noted):

* ``SET @master_binlog_checksum = @@global.binlog_checksum`` announces that we
  understand checksums, so events arrive exactly as stored (with their CRC32),
  and every event's CRC32 is verified here.
* ``SET @mariadb_slave_capability = 4`` (GTID-aware replica), so the server
  sends GTID, GTID_LIST and BINLOG_CHECKPOINT events unchanged.
* ``SET @master_heartbeat_period`` (ns) makes an idle server send heartbeats,
  which feed the caller's read watchdog (the socket timeout).
* ``COM_REGISTER_SLAVE`` with our ``server_id``: we show in SHOW SLAVE HOSTS.
* ``COM_BINLOG_DUMP`` from file:pos, or with an empty name plus
  ``@slave_connect_state`` for a GTID start; flag 2
  (``BINLOG_SEND_ANNOTATE_ROWS_EVENT``) so ANNOTATE_ROWS events are sent and
  relay files stay byte-identical; flag 1 (``BINLOG_DUMP_NON_BLOCK``) when
  ``stop_at_end`` asks the server to send EOF at the end of its last binlog.
  MySQL GTID start uses ``COM_BINLOG_DUMP_GTID``.
* ``semi_sync=True``: ``SET @rpl_semi_sync_slave = 1`` when the upstream has
  a semi-sync master; each event packet then starts ``0x00 0xEF flags`` and
  ``Batch.need_ack`` tells the caller to ``send_ack(file, pos)`` once the
  batch's last boundary is durable.

After the dump command the socket is read directly in big chunks
(``recv_into`` a reusable buffer); packets are split here, events > 16 MiB
spanning several packets are joined, and only headers are decoded.
Artificial events (the fake ROTATE at the start, fake GTID_LIST) and
heartbeats are consumed here and never appear in ``Batch.data``.

The FORMAT_DESCRIPTION event a server re-sends when a dump starts in the
middle of a file is not part of that file at that place, so it is dropped; at
the start of a file it is kept.
"""

from __future__ import annotations

import select
import socket
import struct
import zlib
from collections.abc import Iterator

import pymysql

from console.errors import UserError
from console.mysql.binlog import events as E
from console.mysql.binlog.protocol import (  # noqa: F401 (re-exported)
    BINLOG_DUMP_NON_BLOCK,
    BINLOG_SEND_ANNOTATE_ROWS_EVENT,
    COM_BINLOG_DUMP,
    COM_BINLOG_DUMP_GTID,
    COM_REGISTER_SLAVE,
    CRC_RESIDUE,
    MARIA_SLAVE_CAPABILITY_GTID,
    MAX_PACKET,
    SEMI_SYNC_NEED_ACK,
    SLOW_TYPE,
    ServerIdentity,
    dump_payload,
    mysql_dump_gtid_payload,
    register_payload,
    semi_sync_ack,
)
from console.mysql.binlog.stream import Batch, RawEvent  # noqa: F401 (re-exported)
from console.mysql.connection import (
    ACCESS_DENIED_CODES,
    Endpoint,
    connect,
    describe_error,
    query_one,
)
from console.mysql.gtid import GtidPosition

ER_SLAVE_SAME_ID = 4052  # another replica registered with our server_id and kicked us out


class DumpError(UserError):
    """The upstream refused or broke the dump (error packet, bad event, closed socket)."""

    def __init__(self, message: str, *, code: int | None = None, transient: bool = True):
        super().__init__(message)
        self.code = code
        self.transient = transient


class DumpClient:
    def __init__(self, endpoint: Endpoint, *, server_id: int, heartbeat: float = 1.0,
                 connect_timeout: float = 5.0, read_timeout: float | None = None,
                 stop_at_end: bool = False, annotate: bool = True, gtid_strict: bool = True,
                 report_host: str = "dbops-relay", buffer_size: int = 4 << 20,
                 semi_sync: bool = False):
        if not 1 <= server_id <= 0xFFFFFFFF:
            raise UserError(f"server_id must be between 1 and 4294967295, got {server_id}")
        self.endpoint = endpoint
        self.server_id = server_id
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        # watchdog: no byte (event or heartbeat) for this long = dead connection
        self.read_timeout = read_timeout or max(3.0, heartbeat * 3 + 1)
        self.stop_at_end = stop_at_end
        self.annotate = annotate
        self.gtid_strict = gtid_strict
        self.report_host = report_host
        self.buffer_size = buffer_size
        self.semi_sync = semi_sync
        self.semi_active = False  # the upstream agreed: events carry the semi-sync prefix
        self.conn: pymysql.Connection | None = None
        self.identity: ServerIdentity | None = None
        self.checksum = True
        self.file = ""
        self.pos = 4
        self.tracker = E.GroupTracker()
        self._sock: socket.socket | None = None
        self._need_fde = False

    # ---- connection ----------------------------------------------------------

    def connect(self) -> ServerIdentity:
        """Connect and learn who the upstream is (no dump yet)."""
        self.close()
        self.conn = connect(self.endpoint, connect_timeout=self.connect_timeout,
                            read_timeout=self.read_timeout, write_timeout=self.read_timeout)
        try:
            row = query_one(self.conn, "SELECT @@server_id AS id, @@hostname AS h, @@port AS p, "
                                       "@@version AS v, @@global.binlog_checksum AS c")
            uuid = ""
            flavor = "mariadb" if "mariadb" in str(row["v"]).lower() else "mysql"
            if flavor == "mysql":
                uuid = str(query_one(self.conn, "SELECT @@server_uuid AS u")["u"])
            self.identity = ServerIdentity(int(row["id"]), str(row["h"]), int(row["p"]),
                                           str(row["v"]), uuid, flavor)
            self.checksum = str(row["c"]).upper() != "NONE"
        except pymysql.MySQLError as e:
            self.close()
            raise describe_error(e, self.endpoint) from None
        return self.identity

    def master_status(self) -> tuple[str, int, str]:
        """(file, pos, gtid_binlog_pos) of the upstream right now (own short connection)."""
        c = connect(self.endpoint, connect_timeout=self.connect_timeout, read_timeout=10)
        try:
            row = query_one(c, "SHOW MASTER STATUS")
            gtid = ""
            if self.identity is None or self.identity.flavor == "mariadb":
                gtid = str((query_one(c, "SELECT @@gtid_binlog_pos AS g") or {}).get("g") or "")
            else:
                gtid = str((query_one(c, "SELECT @@gtid_executed AS g") or {}).get("g") or "")
            if not row:
                return "", 0, gtid
            return str(row["File"]), int(row["Position"]), gtid
        except pymysql.MySQLError as e:
            raise describe_error(e, self.endpoint) from None
        finally:
            c.close()

    def open(self, file: str = "", pos: int = 4, gtid: str = "",
             gtid_state: GtidPosition | None = None, need_fde: bool = False) -> None:
        """Register as a replica and start the dump at ``file:pos`` or after ``gtid``.

        ``gtid_state`` (a GTID position) seeds the GTID tracking for a
        file:pos start in the middle of a file.  ``need_fde`` keeps the
        FORMAT_DESCRIPTION the server re-sends for a start inside a file (for
        a caller that starts a new file there; the server has zeroed its
        log_pos and creation time, so that one copy is not byte-identical)."""
        if self.conn is None:
            self.connect()
        conn = self.conn
        assert conn is not None and self.identity is not None
        try:
            with conn.cursor() as cur:
                if self.checksum:
                    cur.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
                cur.execute("SET @master_heartbeat_period = %s", (int(self.heartbeat * 1e9),))
                if self.identity.flavor == "mariadb":
                    cur.execute("SET @mariadb_slave_capability = %s", (MARIA_SLAVE_CAPABILITY_GTID,))
                    if gtid or (not file):
                        cur.execute("SET @slave_connect_state = %s", (gtid,))
                        cur.execute("SET @slave_gtid_strict_mode = %s", (1 if self.gtid_strict else 0,))
                        cur.execute("SET @slave_gtid_ignore_duplicates = 0")
                self.semi_active = False
                if self.semi_sync:
                    cur.execute("SHOW VARIABLES LIKE 'rpl_semi_sync_master_enabled'")
                    if cur.fetchone():
                        cur.execute("SET @rpl_semi_sync_slave = 1")
                        self.semi_active = True
            self._register(conn)
            flags = (BINLOG_SEND_ANNOTATE_ROWS_EVENT if self.annotate else 0) | \
                (BINLOG_DUMP_NON_BLOCK if self.stop_at_end else 0)
            if self.identity.flavor == "mysql" and gtid:
                payload = mysql_dump_gtid_payload(flags, self.server_id, gtid)
                conn._execute_command(COM_BINLOG_DUMP_GTID, payload)
            else:
                by_gtid = bool(gtid or not file) and self.identity.flavor == "mariadb"
                conn._execute_command(COM_BINLOG_DUMP, dump_payload(
                    pos, flags, self.server_id, "" if by_gtid else file))
        except pymysql.MySQLError as e:
            self.close()
            raise describe_error(e, self.endpoint) from None
        self.file, self.pos = file, pos if file else 4
        self._need_fde = need_fde
        self.tracker = E.GroupTracker(GtidPosition.parse(gtid) if gtid else gtid_state)
        self._sock = conn._sock
        self._sock.settimeout(self.read_timeout)

    def _register(self, conn: pymysql.Connection) -> None:
        conn._execute_command(COM_REGISTER_SLAVE,
                              register_payload(self.server_id, self.report_host, self.endpoint.user))
        conn._read_packet()  # OK, or raises the server's error

    def close(self) -> None:
        c, self.conn, self._sock = self.conn, None, None
        if c is not None:
            try:
                if c._sock is not None:
                    c._sock.close()
            except OSError:
                pass
            try:
                c._force_close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def send_ack(self, file: str, pos: int) -> None:
        """Semi-sync: tell the upstream that everything up to ``file:pos`` is
        durable here.  Called (from the writer) only after fsync + meta."""
        sock = self._sock
        if sock is None or not self.semi_active:
            return
        sock.sendall(semi_sync_ack(file, pos))

    def shutdown(self) -> None:
        """From another thread: make a blocking read return at once."""
        s = self._sock
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- reading -------------------------------------------------------------

    def batches(self, with_events: bool = False) -> Iterator[Batch]:
        """Batches of events until EOF (stop_at_end) or an error.

        The hot loop touches only the packet length, the event type, the
        artificial flag and the CRC of ordinary events; everything else is
        decoded for the few event types that move positions or groups."""
        sock = self._sock
        if sock is None:
            raise DumpError("dump not open: call open() first", transient=False)
        rbuf = buf = bytearray(self.buffer_size)
        mv = memoryview(rbuf)
        start = end = 0
        crc32 = zlib.crc32
        u32 = E._U32.unpack_from
        XID, GTID = E.XID, E.GTID
        slow_type = SLOW_TYPE
        fast = not with_events
        semi = self.semi_active
        hoff = 7 if semi else 5  # [0x00][0xEF][flags] before each event with semi-sync
        artificial = E.LOG_EVENT_ARTIFICIAL_F
        label = self.endpoint.label
        need = 0
        pending_data = False
        while True:
            # ---- read more --------------------------------------------------------
            if pending_data and not select.select([sock], [], [], 0)[0]:
                pending_data = False
                yield Batch(file=self.file, upstream_pos=self.pos, idle=True)
            size = len(rbuf)
            keep = end - start
            if need > size or (end == size and start == 0):
                # a packet larger than the buffer: grow it
                nbuf = bytearray(max(need, size * 2, keep + 1))
                nbuf[:keep] = mv[start:end]
                mv.release()
                rbuf = buf = nbuf
                mv = memoryview(nbuf)
                start, end = 0, keep
            elif start and (size - end < 65536 or need > size - start):
                # little room left: move the unparsed tail to the front, in place
                # when it does not overlap (the usual case: a partial event),
                # so the buffer's pages are reused read after read
                if keep <= start:
                    rbuf[:keep] = mv[start:end]
                else:
                    nbuf = bytearray(size)
                    nbuf[:keep] = mv[start:end]
                    mv.release()
                    rbuf = buf = nbuf
                    mv = memoryview(nbuf)
                start, end = 0, keep
            try:
                n = sock.recv_into(mv[end:])
            except TimeoutError:
                raise DumpError(f"{label}: no event or heartbeat for {self.read_timeout:.0f}s "
                                f"(read watchdog)") from None
            except OSError as e:
                raise DumpError(f"{label}: connection lost: {e.strerror or e}") from None
            if n == 0:
                raise DumpError(f"{label}: upstream closed the connection")
            end += n
            # one copy per read: slicing bytes is much cheaper than slicing a
            # memoryview, and bytes join and checksum faster too
            buf = bytes(mv[start:end])
            consumed = start
            dend = end - start
            # ---- split packets ----------------------------------------------------
            tracker = self.tracker
            in_group = tracker.in_group
            # events are copied straight into one growing bytearray (the data to
            # write): no per-event object stays alive and no join at the end
            out = bytearray()
            count = 0
            ev = None         # the last event appended to out (its header gives last_ts)
            evs: list | None = None if fast else []
            batch = Batch(file=self.file, events=evs)
            b_end = -1        # len(out) at the last boundary
            b_pos = 0
            p = 0
            crc = self.checksum
            while dend - p >= 4:
                plen = u32(buf, p)[0] & MAX_PACKET
                pe = p + 4 + plen
                if pe > dend:
                    need = pe - p
                    break
                s = p + hoff
                if plen != MAX_PACKET and not buf[p + 4]:
                    if semi and buf[p + 6] & SEMI_SYNC_NEED_ACK:
                        batch.need_ack = True
                    if fast and not (slow_type[buf[s + 4]] or buf[s + 17] & artificial):
                        # ordinary event (rows, table map, annotate, ...): the hot path
                        ev = buf[s:pe]
                        if crc and crc32(ev) != CRC_RESIDUE:
                            raise self._crc_error(buf[s + 4])
                        out += ev
                        count += 1
                        if not in_group:
                            b_end = len(out)
                            b_pos = self.pos = u32(buf, s + 13)[0]
                        p = pe
                        continue
                    typ = buf[s + 4]
                    if fast and (typ == XID or typ == GTID) and not buf[s + 17] & artificial:
                        # the events that open and close every transaction: the
                        # same checks and GTID tracking as the slow path, inline
                        ev = buf[s:pe]
                        if crc and crc32(ev) != CRC_RESIDUE:
                            raise self._crc_error(typ)
                        out += ev
                        count += 1
                        if typ == XID:
                            tracker.end_group()
                            in_group = False
                            b_end = len(out)
                            b_pos = self.pos = u32(buf, s + 13)[0]
                        else:
                            tracker.begin_gtid(buf, s)
                            in_group = True
                        p = pe
                        continue
                    src, s_off, e_off = buf, s, pe
                elif plen == MAX_PACKET:  # event of 16 MiB or more: several packets
                    total, q = self._multi_end(buf, p, dend)
                    if q < 0:
                        need = total
                        break
                    if semi and buf[p + 6] & SEMI_SYNC_NEED_ACK:
                        batch.need_ack = True
                    event = self._join_multi(buf, p, q, hoff)
                    src, s_off, e_off = memoryview(event), 0, len(event)
                    pe = q
                else:
                    self._special_packet(buf, p, plen, buf[p + 4])
                    start = consumed + pe
                    batch.eof = True
                    tracker.in_group = in_group
                    self._finish(batch, out, count, ev, b_end, b_pos, fast)
                    yield batch
                    return
                need = 0
                p = pe
                # ---- slow path: full header -------------------------------------------
                ts, typ, sid, size, log_pos, flags = E.HEADER.unpack_from(src, s_off)
                if size != e_off - s_off:
                    raise DumpError(f"{label}: event size {size} does not match its packet "
                                    f"({e_off - s_off} bytes) after {self.file}:{self.pos}",
                                    transient=False)
                sev = src[s_off:e_off]
                if typ == E.FORMAT_DESCRIPTION:  # its own checksum setting decides
                    crc = self.checksum = E.fde_checksum_alg(sev) == E.CHECKSUM_CRC32
                if crc and crc32(sev) != CRC_RESIDUE:
                    raise self._crc_error(typ)
                boundary = True
                g = None
                if typ == E.FORMAT_DESCRIPTION:
                    if self.pos != 4 and not self._need_fde:
                        continue  # re-sent description of a file we are inside
                    self._need_fde = False
                    batch.new_file = not out
                    tracker.reset_group()
                elif typ == E.HEARTBEAT:
                    if log_pos:
                        self.pos = log_pos
                    batch.heartbeat = True
                    continue
                elif typ == E.ROTATE:
                    name, rpos = E.rotate_target(sev, 4 if crc else 0)
                    if flags & artificial or ts == 0:
                        if name != self.file:
                            if out:
                                self._finish(batch, out, count, ev, b_end, b_pos, fast)
                                yield batch
                                out, count, ev, b_end = bytearray(), 0, None, -1
                                evs = None if fast else []
                                batch = Batch(file=name, events=evs)
                            self.file, self.pos = name, rpos
                            batch.file = name
                        continue
                    if evs is not None:
                        evs.append((len(out), size, typ, log_pos, True, None))
                    out += sev
                    count += 1
                    ev = sev
                    tracker.reset_group()
                    in_group = False
                    batch.rotate_to = name
                    self.pos = log_pos
                    self._finish(batch, out, count, ev, len(out), log_pos, fast)
                    yield batch
                    self.file, self.pos = name, 4
                    out, count, ev, b_end = bytearray(), 0, None, -1
                    evs = None if fast else []
                    batch = Batch(file=name, events=evs)
                    continue
                elif flags & artificial:
                    continue  # fake GTID_LIST and friends: not part of any file
                elif typ == E.STOP:
                    tracker.reset_group()
                if slow_type[typ]:
                    boundary = tracker.feed(typ, sev, 4 if crc else 0)
                    in_group = tracker.in_group
                    if boundary:
                        g = tracker.last_gtid
                elif in_group:
                    boundary = False
                dlen = len(out)
                out += sev
                count += 1
                ev = sev
                if log_pos:  # 0 only in a re-sent FORMAT_DESCRIPTION: no move
                    self.pos = log_pos
                if boundary:
                    b_end, b_pos = len(out), self.pos
                if evs is not None:
                    evs.append((dlen, size, typ, self.pos, boundary, g))
            start = consumed + p
            buf = rbuf
            tracker.in_group = in_group
            if out or batch.heartbeat:
                self._finish(batch, out, count, ev, b_end, b_pos, fast)
                pending_data = True
                yield batch

    def _crc_error(self, typ: int) -> DumpError:
        return DumpError(f"{self.endpoint.label}: CRC32 mismatch in a "
                         f"{E.TYPE_NAMES.get(typ, f'type {typ}')} event after {self.file}:{self.pos}")

    def _finish(self, batch: Batch, out: bytearray, count: int, last, b_end: int,
                b_pos: int, fast: bool = True) -> None:
        # the relay's writer takes the bytearray as it is; event consumers get bytes
        batch.data = (out if fast else bytes(out)) if out else b""
        batch.count = count
        if last is not None:
            batch.last_ts = E._U32.unpack_from(last, 0)[0]
        batch.upstream_pos = self.pos
        if b_end >= 0:
            batch.boundary_end = b_end
            batch.boundary_pos = b_pos
            batch.gtid_state = self.tracker.state.copy()

    @staticmethod
    def _multi_end(buf, p: int, end: int) -> tuple[int, int]:
        """For packets starting at ``p`` of length 0xFFFFFF: (bytes needed from p,
        end offset of the last packet or -1 when not all are in the buffer)."""
        q = p
        while True:
            if end - q < 4:
                return q - p + 4 + MAX_PACKET, -1
            plen = buf[q] | (buf[q + 1] << 8) | (buf[q + 2] << 16)
            qe = q + 4 + plen
            if qe > end:
                return qe - p, -1
            q = qe
            if plen < MAX_PACKET:
                return q - p, q

    @staticmethod
    def _join_multi(mv, p: int, q: int, hoff: int = 5) -> bytes:
        parts = []
        first = True
        while p < q:
            plen = mv[p] | (mv[p + 1] << 8) | (mv[p + 2] << 16)
            parts.append(mv[p + hoff if first else p + 4:p + 4 + plen])
            first = False
            p += 4 + plen
        return b"".join(parts)

    def _special_packet(self, buf, p: int, plen: int, first: int) -> None:
        label = self.endpoint.label
        if first == 0xFE and plen < 9:
            if self.stop_at_end:
                return  # EOF: the server reached the end of its binlogs (non-blocking dump)
            # a blocking dump never ends by itself: the server is shutting down
            raise DumpError(f"{label}: upstream ended the dump (shutting down?)")
        if first == 0xFF:
            code = struct.unpack_from("<H", buf, p + 5)[0]
            msg = bytes(buf[p + 7:p + 4 + plen])
            if msg.startswith(b"#"):
                msg = msg[6:]
            text = msg.decode("utf-8", "replace")
            if code == ER_SLAVE_SAME_ID:  # an operator error: retrying kicks the other one out
                raise DumpError(f"{label}: error {code} from dump: another replica connected with our "
                                f"server_id {self.server_id} ({text}); give this task a server_id no "
                                f"other server or replica uses", code=code, transient=False)
            # 1236: position/GTID not available upstream; access denied: retrying will not help
            raise DumpError(f"{label}: error {code} from dump: {text}", code=code,
                            transient=code != 1236 and code not in ACCESS_DENIED_CODES)
        raise DumpError(f"{label}: unexpected packet 0x{first:02x} in binlog stream",
                        transient=False)

    def events(self) -> Iterator[RawEvent]:
        """One ``RawEvent`` per stored event (not heartbeats or artificial events)."""
        state = self.tracker.state.copy()
        for b in self.batches(with_events=True):
            data = b.data
            for off, size, typ, end_pos, boundary, gtid in b.events or ():
                raw = data[off:off + size]
                ts, _, sid, _, _, flags = E.HEADER.unpack_from(raw, 0)
                gtext = ""
                if boundary:
                    if gtid is not None:
                        state.put(*gtid)
                        gtext = f"{gtid[0]}-{gtid[1]}-{gtid[2]}"
                    elif typ == E.GTID_LIST:
                        for d, s, q in E.gtid_list(raw):
                            state.put_newer(d, s, q)
                yield RawEvent(b.file, end_pos, ts, typ, sid, flags,
                               raw, boundary, gtext, state.text() if boundary else "")
            if b.eof:
                return
