"""Wire-level constants and payloads of the replication protocol.

MariaDB and MySQL: ``COM_REGISTER_SLAVE``, ``COM_BINLOG_DUMP``,
``COM_BINLOG_DUMP_GTID``, dump flags, the semi-sync packet prefix and ACK.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from console.errors import UserError
from console.mysql.binlog import events as E

COM_BINLOG_DUMP = 0x12
COM_REGISTER_SLAVE = 0x15
COM_BINLOG_DUMP_GTID = 0x1E
BINLOG_DUMP_NON_BLOCK = 1
BINLOG_SEND_ANNOTATE_ROWS_EVENT = 2
MARIA_SLAVE_CAPABILITY_GTID = 4
MAX_PACKET = 0xFFFFFF
SEMI_SYNC_MAGIC = 0xEF
SEMI_SYNC_NEED_ACK = 0x01

# event types the dump client decodes (everything else only has its CRC checked)
SLOW_EVENT_TYPES = frozenset({
    E.QUERY, E.ROTATE, E.FORMAT_DESCRIPTION, E.XID, E.HEARTBEAT, E.GTID, E.GTID_LIST,
    E.XA_PREPARE, E.MYSQL_GTID, E.MYSQL_ANONYMOUS_GTID, E.QUERY_COMPRESSED, E.STOP,
})


SLOW_TYPE = bytes(1 if t in SLOW_EVENT_TYPES else 0 for t in range(256))
# CRC-32 of data followed by its own CRC-32 (little endian) is this constant,
# so one crc32() call over the whole event verifies it.
CRC_RESIDUE = 0x2144DF1C


@dataclass(frozen=True)
class ServerIdentity:
    """Who the upstream is; ``key`` names its relay subdirectory."""

    server_id: int
    hostname: str
    port: int
    version: str
    uuid: str = ""
    flavor: str = "mariadb"

    @property
    def key(self) -> str:
        if self.uuid:
            return self.uuid
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.hostname)
        return f"{safe}-{self.port}-{self.server_id}"


def command_packets(command: int, body: bytes) -> tuple[bytes, int]:
    """A client command as wire packets, and the sequence number of its reply.

    A payload of ``MAX_PACKET`` bytes or more goes as consecutive
    ``MAX_PACKET``-byte packets with increasing sequence numbers, ending
    with a shorter (possibly empty) one; the reply's sequence number follows
    the last packet's.
    """
    payload = bytes([command]) + body
    out = []
    seq = 0
    for start in range(0, len(payload) + 1, MAX_PACKET):
        chunk = payload[start:start + MAX_PACKET]
        out.append(struct.pack("<I", len(chunk) | (seq & 0xFF) << 24) + chunk)
        seq += 1
    return b"".join(out), seq & 0xFF


def register_payload(server_id: int, report_host: str, user: str) -> bytes:
    """COM_REGISTER_SLAVE body (no password, port 0, rank 0, master id 0)."""
    host = report_host.encode()[:60]
    u = user.encode()[:60]
    return (struct.pack("<I", server_id) + bytes([len(host)]) + host
            + bytes([len(u)]) + u + b"\x00" + struct.pack("<HII", 0, 0, 0))


def dump_payload(pos: int, flags: int, server_id: int, file: str) -> bytes:
    """COM_BINLOG_DUMP body: an empty file name means a MariaDB GTID start."""
    name = file.encode()
    return struct.pack("<IHI", pos if name else 4, flags, server_id) + name


def semi_sync_ack(file: str, pos: int) -> bytes:
    """The semi-sync ACK packet (sequence 0): magic, position, file name."""
    payload = bytes([SEMI_SYNC_MAGIC]) + struct.pack("<Q", pos) + file.encode()
    return struct.pack("<I", len(payload))[:3] + b"\x00" + payload


def mysql_dump_gtid_payload(flags: int, server_id: int, gtid_text: str) -> bytes:
    """COM_BINLOG_DUMP_GTID body for a MySQL ``uuid:1-5,...`` set (untagged)."""
    from console.mysql import gtid as G

    gs = G.parse(gtid_text, G.MYSQL)
    sids = b""
    n = 0
    for key, intervals in gs:
        if ":" in str(key):
            raise UserError("tagged MySQL GTIDs are not supported by the dump client yet")
        n += 1
        sids += bytes.fromhex(str(key).replace("-", "")) + struct.pack("<Q", len(intervals))
        for lo, hi in intervals:
            sids += struct.pack("<QQ", lo, hi + 1)
    data = struct.pack("<Q", n) + sids
    return struct.pack("<HII", flags | 4, server_id, 0) + struct.pack("<QI", 4, len(data)) + data
