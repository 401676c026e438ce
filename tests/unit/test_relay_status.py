"""The relay's status never shows the upstream behind what was already
relayed: its position is polled (every 2 s, on its own connection) while
the relayed one moves on; a poll older than the relayed position shows
the relayed position, marked ``upstream_at_least``, and the poll's age
travels in the status (no server: the status mixin over fixed parts)."""

import time
from types import SimpleNamespace

from console.engine.relay.status import (
    RateMeter,
    RelayStatusReport,
    UpstreamSnapshot,
    position_before,
)


def test_position_before():
    assert position_before("mysql-bin.000003", 10, "mysql-bin.000003", 11)
    assert position_before("mysql-bin.000003", 9999, "mysql-bin.000004", 4)
    assert not position_before("mysql-bin.000004", 4, "mysql-bin.000003", 9999)
    assert not position_before("mysql-bin.000003", 10, "mysql-bin.000003", 10)
    assert not position_before("a-bin.000001", 1, "b-bin.000002", 1)  # another server's names
    assert not position_before("", 0, "mysql-bin.000001", 4)


class FakeRelay(RelayStatusReport):
    def __init__(self, relayed: tuple[str, int], polled: UpstreamSnapshot, identity="server_id 1"):
        self.meta = SimpleNamespace(file=relayed[0], pos=relayed[1], gtid="0-1-50", subdir="0001",
                                    identity="server_id 1")
        self._identity = identity
        self._poller = SimpleNamespace(snapshot=polled)
        self.endpoint = SimpleNamespace(label="db1 127.0.0.1:3306", address="127.0.0.1:3306")
        self._connected, self._recv, self._last_ts = True, relayed, time.time()
        self._meter = RateMeter()
        self.store = SimpleNamespace(all_files=lambda: [], root="/relay")
        self._events = self._bytes = self._retries = self._acks = 0
        self._last_error = ""
        self.opts = SimpleNamespace(semi_sync=False)
        self.client = None


LOGS = (("mysql-bin.000003", 5000), ("mysql-bin.000004", 800))


def test_an_old_poll_shows_the_relayed_position():
    polled = UpstreamSnapshot("mysql-bin.000003", 1000, "0-1-40", LOGS, "7d", time.time() - 2.0)
    d = FakeRelay(("mysql-bin.000003", 1500), polled).detail()
    assert (d.upstream_file, d.upstream_pos, d.upstream_gtid) == ("mysql-bin.000003", 1500, "0-1-50")
    assert d.upstream_at_least and d.bytes_behind == 0 and d.caught_up
    assert 1.5 <= d.upstream_age <= 5 and d.upstream_polled_at == polled.at
    # the relay went on into the next file: still not behind
    d = FakeRelay(("mysql-bin.000004", 200), polled).detail()
    assert (d.upstream_file, d.upstream_pos) == ("mysql-bin.000004", 200) and d.upstream_at_least


def test_a_newer_poll_is_shown_as_polled():
    polled = UpstreamSnapshot("mysql-bin.000004", 800, "0-1-60", LOGS, "7d", time.time() - 0.5)
    d = FakeRelay(("mysql-bin.000003", 4500), polled).detail()
    assert (d.upstream_file, d.upstream_pos, d.upstream_gtid) == ("mysql-bin.000004", 800, "0-1-60")
    assert not d.upstream_at_least and d.bytes_behind == 500 + 800 and not d.caught_up


def test_another_upstream_and_no_poll_yet():
    polled = UpstreamSnapshot("mysql-bin.000001", 4, "0-2-1", (), "", time.time())
    d = FakeRelay(("mysql-bin.000003", 1500), polled, identity="server_id 2").detail()
    assert (d.upstream_file, d.upstream_pos) == ("mysql-bin.000001", 4) and not d.upstream_at_least
    assert d.bytes_behind is None
    d = FakeRelay(("mysql-bin.000003", 1500), UpstreamSnapshot()).detail()
    assert d.upstream_age is None and d.upstream_polled_at == 0.0 and not d.upstream_at_least
