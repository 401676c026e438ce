"""Which transactions a host (an old primary) holds that the primary lacks,
by exact GTID (domain, server id, seq), read from both binary logs.

MariaDB positions keep only the newest GTID per domain, and after a
failover the new primary continues the same domain's sequence under its
own server id: the old primary's ``0-1-101..103`` and the new primary's
``0-2-101..`` share sequence numbers.  Set arithmetic on positions cannot
tell those apart, so the check reads the GTID events of both binary logs
(``SHOW BINLOG EVENTS``) and compares triplets.  A GTID below the first
``Gtid_list`` of the primary's oldest binlog (purged history) counts as
present there.

Each errant transaction comes with where it lies in the host's binlog
(file, start, end), which the flashback needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.mysql.gtid import Gtid

_GTID_INFO = re.compile(r"GTID (\d+)-(\d+)-(\d+)")
_LIST_ITEM = re.compile(r"(\d+)-(\d+)-(\d+)")


@dataclass(frozen=True)
class BinlogTrx:
    gtid: Gtid
    file: str
    start: int  # position of its GTID event
    end: int  # end of its last event


@dataclass(frozen=True)
class BinlogGtids:
    trx: tuple[BinlogTrx, ...]  # in binlog order
    floor: dict  # domain -> seq of the oldest binlog's Gtid_list (history before it was purged)

    def triplets(self) -> set[Gtid]:
        return {t.gtid for t in self.trx}

    def server_at(self, domain: int, seq: int) -> int | None:
        for t in self.trx:
            if t.gtid.domain == domain and t.gtid.seq == seq:
                return t.gtid.server_id
        return None


def _rows(handler, conn, sql: str) -> list[dict]:
    return handler._run(conn, sql, fetch=True)


def read_binlog_gtids(handler, conn) -> BinlogGtids:
    files = [r["Log_name"] for r in _rows(handler, conn, "SHOW BINARY LOGS")]
    out: list[BinlogTrx] = []
    floor: dict[int, int] = {}
    for i, f in enumerate(files):
        cur: list | None = None
        for r in _rows(handler, conn, f"SHOW BINLOG EVENTS IN '{f}'"):
            et, info = r["Event_type"], str(r.get("Info") or "")
            if i == 0 and et == "Gtid_list":
                for d, _s, q in _LIST_ITEM.findall(info):
                    floor[int(d)] = max(floor.get(int(d), 0), int(q))
            if et == "Gtid":
                m = _GTID_INFO.search(info)
                if m:
                    if cur:
                        out.append(BinlogTrx(*cur))
                    cur = [Gtid(int(m.group(1)), int(m.group(2)), int(m.group(3))), f,
                           int(r["Pos"]), int(r["End_log_pos"])]
                    continue
            if cur is not None and et not in ("Rotate", "Stop", "Binlog_checkpoint", "Gtid_list",
                                               "Format_desc", "Start_encryption"):
                cur[3] = int(r["End_log_pos"])
        if cur:
            out.append(BinlogTrx(*cur))
    return BinlogGtids(tuple(out), floor)


def oldest_gtid_list(handler, conn) -> dict[int, int]:
    """Domain -> seq of the ``Gtid_list`` that opens the server's oldest binary
    log: what came before was purged and can no longer be sent to a replica."""
    files = [r["Log_name"] for r in _rows(handler, conn, "SHOW BINARY LOGS")]
    out: dict[int, int] = {}
    if not files:
        return out
    for r in _rows(handler, conn, f"SHOW BINLOG EVENTS IN '{files[0]}' LIMIT 4"):
        if r["Event_type"] == "Gtid_list":
            for d, _s, q in _LIST_ITEM.findall(str(r.get("Info") or "")):
                out[int(d)] = max(out.get(int(d), 0), int(q))
    return out


def errant_transactions(host: BinlogGtids, primary: BinlogGtids) -> list[BinlogTrx]:
    """The host's transactions the primary does not hold, in binlog order."""
    have = primary.triplets()
    return [t for t in host.trx if t.gtid not in have and t.gtid.seq > primary.floor.get(t.gtid.domain, 0)]


def fork_position(host: BinlogGtids, primary: BinlogGtids, errant: list[BinlogTrx],
                  host_position: list[Gtid]) -> list[Gtid]:
    """The host's GTID position without the errant transactions: per domain,
    the GTID just before its first errant one (common history), other
    domains as the host has them."""
    first: dict[int, BinlogTrx] = {}
    for t in errant:
        first.setdefault(t.gtid.domain, t)
    out = [g for g in host_position if g.domain not in first]
    for d, t in first.items():
        prev = None
        for x in host.trx:
            if x == t:
                break
            if x.gtid.domain == d:
                prev = x.gtid
        if prev is None and t.gtid.seq > 1:
            sid = primary.server_at(d, t.gtid.seq - 1)
            prev = Gtid(d, sid, t.gtid.seq - 1) if sid is not None else None
        if prev is not None:
            out.append(prev)
    return sorted(out)


def runs(errant: list[BinlogTrx], host: BinlogGtids) -> list[tuple[str, int, int]]:
    """Contiguous (file, start, end) ranges of the errant transactions in the
    host's binlog; a non-errant transaction between two errant ones splits a run."""
    bad = set(errant)
    out: list[list] = []
    prev_bad = False
    for t in host.trx:
        if t in bad:
            if prev_bad and out and out[-1][0] == t.file:
                out[-1][2] = t.end
            else:
                out.append([t.file, t.start, t.end])
            prev_bad = True
        else:
            prev_bad = False
    return [tuple(r) for r in out]


def interleaved(errant: list[BinlogTrx], host: BinlogGtids) -> list[Gtid]:
    """Non-errant transactions of an errant domain written after the first
    errant one: rolling the errant ones back would not restore a state the
    primary had."""
    bad = set(errant)
    domains = {t.gtid.domain for t in errant}
    seen: set[int] = set()
    out = []
    for t in host.trx:
        if t in bad:
            seen.add(t.gtid.domain)
        elif t.gtid.domain in seen and t.gtid.domain in domains:
            out.append(t.gtid)
    return out
