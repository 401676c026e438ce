"""Pure logic of the binlog layer: headers, CRC, group boundaries, GTID state,
file writer/reader, MySQL GTID dump payload."""

import struct
import zlib

import pytest

from console.mysql.binlog import events as E
from console.mysql.binlog.client import mysql_dump_gtid_payload
from console.mysql.binlog.writer import BinlogFileWriter, read_events, valid_prefix
from console.mysql.gtid import position


def ev(typ: int, body: bytes, server_id: int = 1, log_pos: int = 0, flags: int = 0,
       ts: int = 1700000000) -> bytes:
    size = E.HEADER_LEN + len(body) + 4
    raw = E.HEADER.pack(ts, typ, server_id, size, log_pos, flags) + body
    return raw + struct.pack("<I", zlib.crc32(raw))


def fde() -> bytes:
    # binlog version 2, server version 50 bytes, created, header len, post-header lens, alg=1
    body = struct.pack("<H", 4) + b"10.11.19-MariaDB".ljust(50, b"\0") + struct.pack("<I", 0)
    body += bytes([19]) + bytes(40) + bytes([E.CHECKSUM_CRC32])
    return ev(E.FORMAT_DESCRIPTION, body)


def gtid_ev(seq: int, domain: int = 0, server: int = 1, standalone: bool = False) -> bytes:
    return ev(E.GTID, struct.pack("<QIB", seq, domain, E.FL_STANDALONE if standalone else 0) + bytes(6),
              server_id=server)


def query_ev(sql: bytes, db: bytes = b"test") -> bytes:
    post = struct.pack("<IIBHH", 1, 0, len(db), 0, 0)
    return ev(E.QUERY, post + db + b"\0" + sql)


def xid_ev() -> bytes:
    return ev(E.XID, struct.pack("<Q", 77))


def rows_ev() -> bytes:
    return ev(23, b"\x01" * 40)


def gtid_list_ev(items) -> bytes:
    body = struct.pack("<I", len(items)) + b"".join(struct.pack("<IIQ", d, s, q) for d, s, q in items)
    return ev(E.GTID_LIST, body)


def test_header_and_crc():
    e = xid_ev()
    h = E.parse_header(e)
    assert (h.type, h.size, h.type_name) == (E.XID, len(e), "Xid")
    assert E.crc_ok(e)
    bad = bytearray(e)
    bad[20] ^= 1
    assert not E.crc_ok(bad)


def test_group_boundaries_and_gtid_state():
    t = E.GroupTracker()
    seq = [
        (fde(), True), (gtid_list_ev([(0, 1, 10), (1, 2, 5)]), True),
        (gtid_ev(11), False), (rows_ev(), False), (xid_ev(), True),            # row trx
        (gtid_ev(12, standalone=True), False), (query_ev(b"CREATE TABLE t (a int)"), True),  # DDL
        (gtid_ev(13), False), (query_ev(b"BEGIN"), False), (query_ev(b"INSERT INTO t VALUES (1)"), False),
        (query_ev(b"COMMIT"), True),                                                  # statement trx
        (gtid_ev(6, domain=1, server=2), False), (rows_ev(), False), (xid_ev(), True),
    ]
    got = []
    for raw, want in seq:
        got.append(t.feed(raw[4], raw, 4))
        assert got[-1] == want, E.TYPE_NAMES.get(raw[4])
    assert t.state == position("0-1-13,1-2-6")
    assert t.state.text() == "0-1-13,1-2-6"
    assert t.last_gtid == (1, 2, 6)


def test_reset_group_forgets_partial_transaction():
    start = position("0-1-5")
    t = E.GroupTracker(start)
    t.feed(E.GTID, gtid_ev(6), 4)
    t.reset_group()
    assert not t.in_group and t.state == position("0-1-5")
    t.feed(E.GTID, gtid_ev(6), 4)
    t.feed(E.XID, xid_ev(), 4)
    assert t.state == position("0-1-6") and start == position("0-1-5")   # a copy was tracked


def test_gtid_list_never_moves_a_domain_back():
    t = E.GroupTracker(position("0-1-20"))
    t.feed(E.GTID_LIST, gtid_list_ev([(0, 1, 10), (1, 2, 5)]), 4)
    assert t.state.text() == "0-1-20,1-2-5"


def test_writer_reader_roundtrip_and_torn_tail(tmp_path):
    events = [fde(), gtid_list_ev([(0, 1, 1)]), gtid_ev(2), rows_ev(), xid_ev()]
    p = tmp_path / "mysql-bin.000001"
    w = BinlogFileWriter(p)
    w.write(b"".join(events))
    w.sync()
    w.close()
    got = [e for _, e in read_events(p)]
    assert got == events
    assert valid_prefix(p) == p.stat().st_size
    with open(p, "ab") as f:       # a torn event
        f.write(gtid_ev(3)[:10])
    assert [e for _, e in read_events(p)] == events
    assert valid_prefix(p) == 4 + sum(map(len, events))
    # reopening appends after what is there
    w = BinlogFileWriter(p)
    assert w.offset == p.stat().st_size
    w.close()


def test_reader_detects_corruption(tmp_path):
    p = tmp_path / "f"
    data = bytearray(E.MAGIC + fde() + xid_ev())
    data[-6] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(E.BinlogFormatError, match="CRC32"):
        list(read_events(p))


def test_rotate_and_query_helpers():
    r = ev(E.ROTATE, struct.pack("<Q", 4) + b"mysql-bin.000002")
    assert E.rotate_target(r, 4) == ("mysql-bin.000002", 4)
    assert E.query_text(query_ev(b"COMMIT"), 4) == b"COMMIT"
    assert E.query_ends_group(query_ev(b"xa commit 'x'"), 4)
    assert not E.query_ends_group(query_ev(b"INSERT INTO committed VALUES (1)"), 4)


def test_mysql_gtid_dump_payload():
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    p = mysql_dump_gtid_payload(2, 99, f"{uuid}:1-5:7")
    flags, sid, name_len = struct.unpack_from("<HII", p, 0)
    assert (flags, sid, name_len) == (2 | 4, 99, 0)
    pos, size = struct.unpack_from("<QI", p, 10)
    body = p[22:]
    assert pos == 4 and size == len(body)
    n, = struct.unpack_from("<Q", body, 0)
    assert n == 1 and body[8:24] == bytes.fromhex(uuid.replace("-", ""))
    assert struct.unpack_from("<QQQQQ", body, 24) == (2, 1, 6, 7, 8)
