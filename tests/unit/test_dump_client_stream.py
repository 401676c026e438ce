"""The dump client's packet splitting on synthetic streams (no server):
chunk boundaries anywhere, events over 16 MiB in several packets, artificial
events, the re-sent FORMAT_DESCRIPTION, EOF, error packets, CRC mismatches,
semi-sync prefixes."""

import struct

import pytest

from console.config import Secret
from console.mysql.binlog import events as E
from console.mysql.binlog.client import DumpClient, DumpError
from console.mysql.connection import Endpoint
from console.mysql.gtid import position
from tests.unit.test_binlog_events import ev, fde, gtid_ev, gtid_list_ev, rows_ev, xid_ev


def packets(events, semi_ack_on=()):
    out = b""
    seq = 1
    for i, e in enumerate(events):
        if isinstance(e, tuple):  # raw payload (EOF / error)
            payload = e[0]
        elif semi_ack_on is not None and semi_ack_on != ():
            payload = b"\x00\xef" + bytes([1 if i in semi_ack_on else 0]) + e
        else:
            payload = b"\x00" + e
        while True:
            part, payload = payload[:0xFFFFFF], payload[0xFFFFFF:]
            out += struct.pack("<I", len(part))[:3] + bytes([seq & 0xFF]) + part
            seq += 1
            if len(part) < 0xFFFFFF:
                break
    return out


class FakeSock:
    def __init__(self, data, chunk):
        self.data, self.off, self.chunk = data, 0, chunk

    def recv_into(self, mv, n=0):
        k = min(len(mv), self.chunk, len(self.data) - self.off)
        mv[:k] = self.data[self.off:self.off + k]
        self.off += k
        return k

    def fileno(self):
        return -1


def client(data, chunk, monkeypatch, *, pos=4, stop_at_end=True, semi=False):
    monkeypatch.setattr("select.select", lambda r, w, x, t: (r, [], []))
    c = DumpClient(Endpoint("127.0.0.1", 1, "u", Secret("p")), server_id=9, stop_at_end=stop_at_end,
                   buffer_size=64)
    c._sock = FakeSock(data, chunk)
    c.file, c.pos, c.semi_active = "bin.000001", pos, semi
    return c


def fake_rotate(name):
    return ev(E.ROTATE, struct.pack("<Q", 4) + name, ts=0, flags=E.LOG_EVENT_ARTIFICIAL_F)


def with_pos(e, pos):
    raw = bytearray(e[:-4])
    struct.pack_into("<I", raw, 13, pos)
    import zlib
    return bytes(raw) + struct.pack("<I", zlib.crc32(raw))


def file_events():
    out, pos = [], 4
    for e in [fde(), gtid_list_ev([]), gtid_ev(1), rows_ev(), xid_ev(), gtid_ev(2), rows_ev(), xid_ev()]:
        pos += len(e)
        out.append(with_pos(e, pos))
    return out


EOF_PKT = (b"\xfe\x00\x00\x02\x00",)


@pytest.mark.parametrize("chunk", [1, 7, 100, 1 << 20])
def test_split_at_any_chunk_boundary(chunk, monkeypatch):
    evs = file_events()
    data = packets([fake_rotate(b"bin.000001")] + evs + [ev(E.HEARTBEAT, b"bin.000001")] + [EOF_PKT])
    c = client(data, chunk, monkeypatch)
    got = b""
    last = None
    for b in c.batches():
        got += b.data
        if b.boundary_end >= 0:
            last = (b.boundary_pos, b.gtid_state)
    assert got == b"".join(evs)            # heartbeat and fake rotate not stored
    assert last == (4 + len(got), position("0-1-2"))


def test_events_api_marks_boundaries_and_positions(monkeypatch):
    evs = file_events()
    c = client(packets(evs + [EOF_PKT]), 50, monkeypatch)
    out = list(c.events())
    assert [e.boundary for e in out] == [True, True, False, False, True, False, False, True]
    assert [e.gtid for e in out if e.gtid] == ["0-1-1", "0-1-2"]
    assert out[-1].position == "0-1-2" and out[-1].end_pos == 4 + sum(map(len, evs))
    assert all(e.data == raw for e, raw in zip(out, evs, strict=True))


def test_event_over_16mib_in_several_packets(monkeypatch):
    big = ev(23, b"\x07" * (17 * 1024 * 1024))
    evs = [with_pos(gtid_ev(1), 100), with_pos(big, 200), with_pos(xid_ev(), 300)]
    c = client(packets(evs + [EOF_PKT]), 1 << 20, monkeypatch, pos=50)
    got = b"".join(b.data for b in c.batches())
    assert got == b"".join(evs)


def test_resent_fde_inside_a_file_is_dropped(monkeypatch):
    evs = file_events()
    resent = with_pos(fde(), 0)
    c = client(packets([fake_rotate(b"bin.000001"), resent] + evs[2:] + [EOF_PKT]), 1000,
               monkeypatch, pos=len(E.MAGIC + evs[0] + evs[1]))
    assert b"".join(b.data for b in c.batches()) == b"".join(evs[2:])


def test_rotate_ends_a_batch_and_switches_file(monkeypatch):
    evs = file_events()
    real_rot = with_pos(ev(E.ROTATE, struct.pack("<Q", 4) + b"bin.000002"), 4 + sum(map(len, evs)) + 43)
    second = file_events()
    c = client(packets(evs + [real_rot] + second + [EOF_PKT]), 1 << 20, monkeypatch)
    bs = [b for b in c.batches() if b.data]   # a 64-byte buffer: many small batches
    rot = [b for b in bs if b.rotate_to]
    assert len(rot) == 1 and rot[0].file == "bin.000001" and rot[0].rotate_to == "bin.000002"
    assert rot[0].data.endswith(real_rot) and rot[0].boundary_end == len(rot[0].data)
    assert b"".join(b.data for b in bs if b.file == "bin.000001") == b"".join(evs) + real_rot
    assert b"".join(b.data for b in bs if b.file == "bin.000002") == b"".join(second)


def test_crc_mismatch_is_refused(monkeypatch):
    evs = file_events()
    bad = bytearray(evs[3])
    bad[25] ^= 0x40
    c = client(packets(evs[:3] + [bytes(bad)] + [EOF_PKT]), 1000, monkeypatch)
    with pytest.raises(DumpError, match="CRC32 mismatch"):
        list(c.batches())


def test_error_packet_and_eof_without_stop_at_end(monkeypatch):
    err = (b"\xff" + struct.pack("<H", 1236) + b"#HY000Could not find first log file",)
    c = client(packets(file_events()[:2] + [err]), 1000, monkeypatch)
    with pytest.raises(DumpError, match="error 1236 from dump: Could not find first log") as ei:
        list(c.batches())
    assert ei.value.code == 1236 and not ei.value.transient
    c = client(packets(file_events()[:2] + [EOF_PKT]), 1000, monkeypatch, stop_at_end=False)
    with pytest.raises(DumpError, match="ended the dump"):
        list(c.batches())


def test_semi_sync_prefix_and_need_ack(monkeypatch):
    evs = file_events()
    c = client(packets(evs + [EOF_PKT], semi_ack_on={4, 7}), 1 << 20, monkeypatch, semi=True)
    bs = list(c.batches())
    assert b"".join(b.data for b in bs) == b"".join(evs)
    assert any(b.need_ack for b in bs)


def mixed_file_events(n_trx=60):
    """A file with row transactions in two domains, DDLs (standalone GTID +
    QUERY), BEGIN/COMMIT query transactions and events of varied sizes."""
    from tests.unit.test_binlog_events import query_ev
    evs = [fde(), gtid_list_ev([(0, 1, 0)])]
    for i in range(1, n_trx + 1):
        dom = i % 2
        if i % 7 == 0:
            evs += [gtid_ev(i, domain=dom, standalone=True), query_ev(b"CREATE TABLE t%d (a int)" % i)]
        elif i % 5 == 0:
            evs += [gtid_ev(i, domain=dom), query_ev(b"BEGIN"), query_ev(b"INSERT INTO t VALUES (1)"),
                    query_ev(b"COMMIT")]
        else:
            evs += [gtid_ev(i, domain=dom, server=2)]
            evs += [ev(19, b"\x05" * (10 + i)), ev(23, b"\x01" * (i * 37 % 900 + 1))] * (1 + i % 3)
            evs += [xid_ev()]
    out, pos = [], 4
    for e in evs:
        pos += len(e)
        out.append(with_pos(e, pos))
    return out


@pytest.mark.parametrize("chunk,bufsize", [(1, 64), (13, 64), (333, 4096), (5000, 4096), (1 << 20, 1 << 16)])
def test_fast_path_matches_the_event_api(chunk, bufsize, monkeypatch):
    """The batch fast path (inline GTID/XID, one bytearray per batch, the
    receive buffer compacted in place) gives the same bytes, boundaries, GTID
    positions, event counts and timestamps as the per-event slow path."""
    evs = mixed_file_events()
    data = packets(evs + [EOF_PKT])
    c = client(data, chunk, monkeypatch)
    c.buffer_size = bufsize
    got, count, bounds = b"", 0, []
    for b in c.batches():
        if b.boundary_end >= 0:
            bounds.append((len(got) + b.boundary_end, b.boundary_pos, b.gtid_state.text()))
        if b.data:
            assert b.last_ts == 1700000000
        got += bytes(b.data)
        count += b.count
    assert got == b"".join(evs) and count == len(evs)
    c = client(data, chunk, monkeypatch)
    c.buffer_size = bufsize
    slow, off = [], 0
    for e in c.events():
        off += len(e.data)
        if e.boundary:
            slow.append((off, e.end_pos, e.position))
    # each batch reports its last boundary: every one of them is a real boundary
    assert set(bounds) <= set(slow) and bounds[-1] == slow[-1]
    assert slow[-1][2] == "0-1-60,1-2-59"


def test_crc_mismatch_in_gtid_or_xid_is_refused(monkeypatch):
    evs = file_events()
    for i in (2, 4):  # the GTID and the XID of the first transaction
        bad = bytearray(evs[i])
        bad[len(bad) // 2] ^= 0x01
        c = client(packets(evs[:i] + [bytes(bad)] + evs[i + 1:] + [EOF_PKT]), 1000, monkeypatch)
        with pytest.raises(DumpError, match="CRC32 mismatch in a (Gtid|Xid) event"):
            list(c.batches())


def test_tracker_begin_gtid_and_end_group():
    t = E.GroupTracker(position("0-1-5"))
    g = gtid_ev(6, domain=3, server=9)
    t.begin_gtid(b"xx" + g, 2)
    assert t.in_group and t.pending == (3, 9, 6) and not t.standalone
    assert t.end_group() and not t.in_group and t.state == position("0-1-5,3-9-6")
    assert t.last_gtid == (3, 9, 6)
