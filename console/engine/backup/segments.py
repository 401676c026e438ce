"""Log segments: complete transactions of the binlog stream, zstd-compressed.

A segment is itself a valid binlog file once decompressed: the magic, the
FORMAT_DESCRIPTION of the source file (with the in-use flag cleared), then
whole transactions (GTID .. XID/COMMIT) exactly as the source wrote them.
So ``zstd -dc seg | mariadb-binlog -`` reads it, and so does our replay.

Its manifest (JSON, published after the data) says where it came from and
what it holds: source server and binlog file, positions, the GTID state
before and after (``gtid_start``/``gtid_end``), per-domain first and last
sequence numbers, first and last commit time, sizes and the sha256 of the
stored bytes.  A segment without a manifest does not exist.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from console.engine.replay.txn import Txn
from console.mysql.binlog import events as E
from console.mysql.gtid import GtidPosition

LOG_PREFIX = "log"


def data_key(seq: int) -> str:
    return f"{LOG_PREFIX}/{seq:010d}.binlog.zst"


def manifest_key(seq: int) -> str:
    return f"{LOG_PREFIX}/{seq:010d}.json"


@dataclass(frozen=True)
class SegmentManifest:
    seq: int
    source: str                 # host:port the events were read from
    source_id: str              # server identity (server_id / hostname / port)
    binlog_file: str
    start_pos: int              # source position before the first transaction
    end_pos: int                # source position after the last transaction
    gtid_start: str             # GTID state before (MariaDB position notation)
    gtid_end: str               # GTID state after
    domains: dict = field(default_factory=dict)   # "domain" -> [first_seq, last_seq, count]
    first_ts: int = 0
    last_ts: int = 0
    transactions: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    sha256: str = ""            # of the stored (compressed) object
    created: float = 0.0
    key_id: str = ""            # the encryption key's id ("" = stored unencrypted)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SegmentManifest:
        d = json.loads(raw)
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def clean_fde(fde: bytes) -> bytes:
    """The FORMAT_DESCRIPTION with the in-use flag cleared (CRC recomputed)."""
    ev = bytearray(fde)
    flags = struct.unpack_from("<H", ev, 17)[0]
    if not flags & E.LOG_EVENT_BINLOG_IN_USE_F:
        return bytes(ev)
    struct.pack_into("<H", ev, 17, flags & ~E.LOG_EVENT_BINLOG_IN_USE_F)
    if E.fde_checksum_alg(ev) == E.CHECKSUM_CRC32:
        struct.pack_into("<I", ev, len(ev) - 4, zlib.crc32(bytes(ev[:-4])))
    return bytes(ev)


def build_segment(fde: bytes, txns: list[Txn]) -> bytes:
    """The raw (uncompressed) segment: magic + FDE + transactions."""
    return b"".join([E.MAGIC, clean_fde(fde), *(t.data for t in txns)])


def domains_of(txns: list[Txn]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for t in txns:
        d = out.get(str(t.domain))
        if d is None:
            out[str(t.domain)] = [t.seq, t.seq, 1]
        else:
            d[1] = t.seq
            d[2] += 1
    return out


def advance(state: GtidPosition, txns: list[Txn]) -> GtidPosition:
    """The position after ``txns`` (``state`` itself is left as it is)."""
    out = state.copy()
    for t in txns:
        out.put(t.domain, t.server_id, t.seq)
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- reading a segment back ------------------------------------------------------

def iter_events(raw: bytes) -> Iterator[bytes]:
    """The events of a decompressed segment (FDE first), CRC-checked."""
    if raw[:4] != E.MAGIC:
        raise E.BinlogFormatError("segment does not start with the binlog magic")
    p, n = 4, len(raw)
    crc = True
    while p < n:
        if n - p < E.HEADER_LEN:
            raise E.BinlogFormatError(f"torn event header at offset {p}")
        size = int.from_bytes(raw[p + 9:p + 13], "little")
        if size < E.HEADER_LEN or p + size > n:
            raise E.BinlogFormatError(f"bad event size {size} at offset {p}")
        ev = raw[p:p + size]
        if ev[4] == E.FORMAT_DESCRIPTION:
            crc = E.fde_checksum_alg(ev) == E.CHECKSUM_CRC32
        elif crc and zlib.crc32(ev[:-4]) != int.from_bytes(ev[-4:], "little"):
            raise E.BinlogFormatError(f"CRC32 mismatch in event at offset {p}")
        yield ev
        p += size


def split_transactions(raw: bytes) -> tuple[bytes, list[Txn]]:
    """(FDE, transactions) of a decompressed segment."""
    fde = b""
    txns: list[Txn] = []
    tracker = E.GroupTracker()
    cur: list[bytes] = []
    crc_len = 4
    for ev in iter_events(raw):
        typ = ev[4]
        if typ == E.FORMAT_DESCRIPTION:
            fde = ev
            crc_len = 4 if E.fde_checksum_alg(ev) == E.CHECKSUM_CRC32 else 0
            continue
        cur.append(ev)
        if tracker.feed(typ, ev, crc_len):
            g = tracker.last_gtid
            if g is None:
                raise E.BinlogFormatError(f"event {E.TYPE_NAMES.get(typ, typ)} outside a "
                                          f"transaction in a segment")
            ts = E.HEADER.unpack_from(ev, 0)[0]
            txns.append(Txn(g[0], g[1], g[2], ts, b"".join(cur),
                            E.HEADER.unpack_from(ev, 0)[4]))
            cur = []
    if cur:
        raise E.BinlogFormatError("segment ends inside a transaction")
    return fde, txns
