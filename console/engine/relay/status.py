"""Relay status: the frozen snapshot, rates, bytes behind, the upstream
poller, and ``RelayStatusReport`` (mixed into ``RelayTask``, ``task.py``),
which builds the task's detail and summary."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from console.mysql.connection import Endpoint, connect, query, query_one


@dataclass(frozen=True)
class RelayStatus:
    upstream: str
    upstream_identity: str
    connected: bool
    upstream_file: str
    upstream_pos: int
    upstream_gtid: str
    received_file: str
    received_pos: int
    relayed_subdir: str
    relayed_file: str
    relayed_pos: int
    relayed_gtid: str
    bytes_behind: int | None
    seconds_behind: float | None
    events_per_s: float
    mb_per_s: float
    total_events: int
    total_bytes: int
    retries: int
    last_error: str
    relay_dir: str
    relay_bytes: int
    relay_files: int
    upstream_retention: str
    caught_up: bool
    semi_sync: str = "off"       # off | on | unavailable (upstream has no semi-sync master)
    acks: int = 0
    mb_history: tuple[float, ...] = ()
    upstream_address: str = ""   # host:port of the upstream
    # the upstream's position is polled (every 2 s) on its own connection:
    # when it was read, and its age when this snapshot was taken (None:
    # never read); the relayed position is newer.  A poll older than what
    # was already relayed shows the relayed position instead
    # (``upstream_at_least``): the upstream is at least there.
    upstream_polled_at: float = 0.0
    upstream_age: float | None = None
    upstream_at_least: bool = False


def bytes_behind(file: str, pos: int, up_file: str, up_pos: int,
                 logs: list[tuple[str, int]]) -> int | None:
    """Bytes between ``file:pos`` and the upstream's end ``up_file:up_pos``,
    across files (``logs``: SHOW BINARY LOGS names and sizes); None when unknown."""
    if not file or not up_file:
        return None
    if file == up_file:
        return max(0, up_pos - pos)
    names = [n for n, _ in logs]
    if file not in names:
        return None
    i = names.index(file)
    total = logs[i][1] - pos
    for n, size in logs[i + 1:]:
        total += up_pos if n == up_file else size
        if n == up_file:
            break
    return max(0, total)


class RateMeter:
    """events/s and MB/s over the last ~5 s, plus a MB/s history (sparkline)."""

    def __init__(self, history: int = 60):
        self._samples: collections.deque = collections.deque(maxlen=64)
        self.history: collections.deque = collections.deque(maxlen=history)

    def add(self, events: int, nbytes: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if not self._samples or now - self._samples[-1][0] >= 1.0:
            self._samples.append((now, events, nbytes))
            self.history.append(self.rates()[1])

    def rates(self) -> tuple[float, float]:
        s = list(self._samples)
        if len(s) < 2:
            return 0.0, 0.0
        t0, e0, b0 = s[max(0, len(s) - 6)]
        t1, e1, b1 = s[-1]
        dt = t1 - t0
        if dt <= 0:
            return 0.0, 0.0
        return (e1 - e0) / dt, (b1 - b0) / dt / 1e6


def position_before(file: str, pos: int, other_file: str, other_pos: int) -> bool:
    """``file:pos`` is before ``other_file:other_pos`` in one server's
    binlog sequence (``name.000123``); False when they cannot be compared."""
    base, _, num = file.rpartition(".")
    obase, _, onum = other_file.rpartition(".")
    if not (file and other_file and base == obase and num.isdigit() and onum.isdigit()):
        return False
    return (int(num), pos) < (int(onum), other_pos)


@dataclass(frozen=True)
class UpstreamSnapshot:
    file: str = ""
    pos: int = 0
    gtid: str = ""
    logs: tuple = ()
    retention: str = ""
    at: float = 0.0  # wall time of the poll (0: never read)


class UpstreamPoller(threading.Thread):
    """Status only: the upstream's end every ``interval`` s on one kept
    connection (never the dump connection); errors only leave the snapshot old."""

    def __init__(self, endpoint: Callable[[], Endpoint], stop: threading.Event,
                 name: str, interval: float = 2.0):
        super().__init__(name=name, daemon=True)
        self.endpoint, self.stop_event, self.interval = endpoint, stop, interval
        self.snapshot = UpstreamSnapshot()

    def run(self) -> None:
        c = None
        c_ep = None
        while not self.stop_event.is_set():
            ep = self.endpoint()
            try:
                if c is None or c_ep != ep:
                    _close(c)
                    c, c_ep = None, ep
                    c = connect(ep, connect_timeout=2, read_timeout=5)
                st = query_one(c, "SHOW MASTER STATUS") or {}
                g = query_one(c, "SELECT @@gtid_binlog_pos AS g, @@expire_logs_days AS d") or {}
                logs = tuple((str(r["Log_name"]), int(r["File_size"])) for r in query(c, "SHOW BINARY LOGS"))
                days = float(g.get("d") or 0)
                self.snapshot = UpstreamSnapshot(str(st.get("File", "")), int(st.get("Position", 0) or 0),
                                                 str(g.get("g") or ""), logs,
                                                 f"{days:g}d" if days else "unlimited", time.time())
            except Exception:  # noqa: BLE001 - status only: never kill the task
                _close(c)
                c = None
            self.stop_event.wait(self.interval)
        _close(c)


def _close(c) -> None:
    if c is not None:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


class RelayStatusReport:
    """Status of ``RelayTask``: detail and summary."""

    def _same_upstream(self, meta) -> bool:
        """The relayed position is in the polled upstream's binlog sequence."""
        return bool(meta and meta.file and not (self._identity and meta.identity != self._identity))

    def _behind(self, meta, up: UpstreamSnapshot) -> int | None:
        if not self._same_upstream(meta):
            return None
        return bytes_behind(meta.file, meta.pos, up.file, up.pos, up.logs)

    def _upstream_seen(self, meta, up: UpstreamSnapshot) -> tuple[UpstreamSnapshot, bool]:
        """The poll, or the relayed position when the poll is older than
        what was already relayed (the upstream is at least there)."""
        if self._same_upstream(meta) and up.file and position_before(up.file, up.pos, meta.file, meta.pos):
            return UpstreamSnapshot(meta.file, meta.pos, meta.gtid or up.gtid, up.logs, up.retention, up.at), True
        return up, False

    def detail(self) -> RelayStatus:
        meta = self.meta  # read once: the relayed position of this snapshot
        polled = self._poller.snapshot
        up, at_least = self._upstream_seen(meta, polled)
        behind = self._behind(meta, up)
        caught = behind == 0
        ev_s, mb_s = self._meter.rates()
        files = self.store.all_files()
        secs = None
        if behind is not None:
            secs = 0.0 if caught else (max(0.0, time.time() - self._last_ts) if self._last_ts else None)
        return RelayStatus(
            upstream=self.endpoint.label, upstream_address=self.endpoint.address,
            upstream_identity=self._identity,
            connected=self._connected, upstream_file=up.file, upstream_pos=up.pos,
            upstream_gtid=up.gtid, received_file=self._recv[0], received_pos=self._recv[1],
            relayed_subdir=meta.subdir if meta else "", relayed_file=meta.file if meta else "",
            relayed_pos=meta.pos if meta else 0, relayed_gtid=meta.gtid if meta else "",
            bytes_behind=behind, seconds_behind=secs, events_per_s=round(ev_s, 1),
            mb_per_s=round(mb_s, 3), total_events=self._events, total_bytes=self._bytes,
            retries=self._retries, last_error=self._last_error, relay_dir=str(self.store.root),
            relay_bytes=sum(f.size for f in files), relay_files=len(files),
            upstream_retention=up.retention, caught_up=caught,
            semi_sync=self._semi_state(), acks=self._acks,
            mb_history=tuple(self._meter.history),
            upstream_polled_at=polled.at, upstream_at_least=at_least,
            upstream_age=round(max(0.0, time.time() - polled.at), 1) if polled.at else None,
        )

    def _semi_state(self) -> str:
        if not self.opts.semi_sync:
            return "off"
        c = self.client
        if c is None:
            return "on (not connected)"
        return "on" if c.semi_active else "unavailable"

    def summary(self) -> str:
        meta = self.meta
        if not meta:
            return f"relay from {self.endpoint.label}: starting"
        pos = f"{meta.file}:{meta.pos}" if meta.file else "(by GTID)"
        return f"relay from {self.endpoint.label} at {pos} gtid {meta.gtid or '-'}"
