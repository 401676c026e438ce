"""Hand-built binlog events (with CRC32) for unit tests of pure logic."""

from __future__ import annotations

import struct
import zlib

from console.mysql.binlog import events as E


def event(typ: int, body: bytes, ts: int = 1_700_000_000, server_id: int = 1,
          log_pos: int = 0, flags: int = 0) -> bytes:
    size = E.HEADER_LEN + len(body) + 4
    head = E.HEADER.pack(ts, typ, server_id, size, log_pos, flags)
    raw = head + body
    return raw + struct.pack("<I", zlib.crc32(raw))


def fde(in_use: bool = True) -> bytes:
    body = struct.pack("<H", 4) + b"10.11.0-MariaDB".ljust(50, b"\0") + struct.pack("<I", 0) \
        + bytes([19]) + bytes(40) + bytes([E.CHECKSUM_CRC32])
    return event(E.FORMAT_DESCRIPTION, body, flags=E.LOG_EVENT_BINLOG_IN_USE_F if in_use else 0)


def gtid(domain: int, server: int, seq: int, ts: int = 1_700_000_000, standalone=False) -> bytes:
    body = struct.pack("<QIB", seq, domain, E.FL_STANDALONE if standalone else 0) + bytes(6)
    return event(E.GTID, body, ts=ts, server_id=server)


def xid(n: int = 1, ts: int = 1_700_000_000, server: int = 1) -> bytes:
    return event(E.XID, struct.pack("<Q", n), ts=ts, server_id=server)


def rows(payload: bytes = b"row", ts: int = 1_700_000_000) -> bytes:
    return event(30, bytes(6) + struct.pack("<H", 1) + payload, ts=ts)   # WRITE_ROWS v1


def txn(domain: int, server: int, seq: int, ts: int = 1_700_000_000) -> bytes:
    return gtid(domain, server, seq, ts) + rows(b"r%d" % seq, ts) + xid(seq, ts, server)
