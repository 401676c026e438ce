"""Relay directory logic without a server: recovery, purge, pins, reader, options."""

import os
import subprocess
import sys
import time

import pytest

from console.config import parse_config
from console.engine.relay.reader import RelayReader
from console.engine.relay.store import RelayError, RelayMeta, RelayStore, file_key
from console.mysql.binlog import events as E
from tests.unit.test_binlog_events import fde, gtid_ev, gtid_list_ev, rows_ev, xid_ev


def trx(seq, domain=0, server=1):
    return gtid_ev(seq, domain, server) + rows_ev() + xid_ev()


def make_file(path, state, seqs):
    data = E.MAGIC + fde() + gtid_list_ev([(d, s, q) for d, (s, q) in state.items()])
    for q in seqs:
        data += trx(q)
    path.write_bytes(data)
    return len(data)


def test_file_key_orders_numerically():
    names = ["b.1000000", "b.999999", "b.000002"]
    assert sorted(names, key=file_key) == ["b.000002", "b.999999", "b.1000000"]


def test_recover_truncates_torn_tail_and_later_files(tmp_path):
    st = RelayStore(tmp_path)
    sub = st.new_subdir("host-3306-1")
    d = st.subdir_path(sub)
    n1 = make_file(d / "bin.000001", {}, [1, 2])
    with open(d / "bin.000001", "ab") as f:
        f.write(trx(3)[:-7])            # torn transaction
    (d / "bin.000002").write_bytes(E.MAGIC + fde())   # written after the last meta
    st.save_meta(RelayMeta(sub, "host-3306-1", "h:1", "bin.000001", n1, n1, "0-1-2"))
    meta = st.recover()
    assert meta.relay_pos == n1
    assert (d / "bin.000001").stat().st_size == n1
    assert not (d / "bin.000002").exists()


def test_recover_drops_subdir_of_an_unfinished_switch(tmp_path):
    st = RelayStore(tmp_path)
    a = st.new_subdir("a-1-1")
    n = make_file(st.subdir_path(a) / "bin.000001", {}, [1])
    st.save_meta(RelayMeta(a, "a-1-1", "h:1", "bin.000001", n, n, "0-1-1"))
    b = st.new_subdir("b-1-2")
    (st.subdir_path(b) / "bin.000009").write_bytes(E.MAGIC)
    assert b.endswith(".000002")
    st.recover()
    assert st.subdirs() == [a]


def test_recover_refuses_a_damaged_file(tmp_path):
    st = RelayStore(tmp_path)
    a = st.new_subdir("a-1-1")
    make_file(st.subdir_path(a) / "bin.000001", {}, [1])
    st.save_meta(RelayMeta(a, "a-1-1", "h:1", "bin.000001", 99999, 99999, "0-1-1"))
    with pytest.raises(RelayError, match="damaged"):
        st.recover()


def test_purge_keeps_current_and_pinned_files(tmp_path):
    st = RelayStore(tmp_path)
    a = st.new_subdir("a-1-1")
    d = st.subdir_path(a)
    sizes = [make_file(d / f"bin.00000{i}", {}, [i]) for i in range(1, 6)]
    old = time.time() - 10 * 3600
    for i in range(1, 6):
        os.utime(d / f"bin.00000{i}", (old, old))
    st.save_meta(RelayMeta(a, "a-1-1", "h:1", "bin.000005", sizes[-1], sizes[-1], "0-1-5"))
    st.pin("backup", a, "bin.000003")
    removed = st.purge(max_age=3600)
    assert sorted(f.name for f in removed) == ["bin.000001", "bin.000002"]
    st.unpin("backup")
    removed = st.purge(max_bytes=1)
    assert sorted(f.name for f in removed) == ["bin.000003", "bin.000004"]
    assert [f.name for f in st.all_files()] == ["bin.000005"]   # the current file stays
    with pytest.raises(RelayError, match="no relay file"):
        st.purge(before="bin.000077")


def test_reader_by_gtid_and_position_across_subdirs(tmp_path):
    st = RelayStore(tmp_path)
    a = st.new_subdir("a-1-1")
    make_file(st.subdir_path(a) / "bin.000001", {}, [1, 2, 3])
    make_file(st.subdir_path(a) / "bin.000002", {0: (1, 3)}, [4, 5])
    b = st.new_subdir("b-1-2")
    # the new upstream's file starts earlier; the relay only holds what follows 0-1-5
    data = E.MAGIC + fde() + gtid_list_ev([(0, 1, 2)]) + trx(6) + trx(7)
    (st.subdir_path(b) / "other.000004").write_bytes(data)
    st.save_meta(RelayMeta(b, "b-1-2", "h:2", "other.000004", 999, len(data), "0-1-7"))
    r = RelayReader(st)
    got = [e.gtid for e in r.events(gtid="0-1-2") if e.gtid]
    assert got == ["0-1-3", "0-1-4", "0-1-5", "0-1-6", "0-1-7"]
    last = [e for e in r.events(gtid="0-1-2") if e.boundary][-1]
    assert last.position == "0-1-7"
    by_pos = [e.gtid for e in r.events(subdir=a, file="bin.000002", pos=4) if e.gtid]
    assert by_pos == ["0-1-4", "0-1-5", "0-1-6", "0-1-7"]
    # never past the durable end
    st.save_meta(RelayMeta(b, "b-1-2", "h:2", "other.000004", 999, len(data) - len(trx(7)), "0-1-6"))
    assert [e.gtid for e in r.events(gtid="0-1-5") if e.gtid] == ["0-1-6"]


def test_reader_starts_before_a_switch_whose_first_file_has_an_older_gtid_list(tmp_path):
    """After a switch the new subdirectory's first file is the new upstream's:
    its GTID_LIST can be older than the switch point (the relay only holds
    what follows it), so it must not be taken as the start for a position
    before the switch: the transactions in between are in the old subdirectory."""
    st = RelayStore(tmp_path)
    a = st.new_subdir("a-1-1")
    make_file(st.subdir_path(a) / "bin.000001", {}, [1, 2, 3])
    make_file(st.subdir_path(a) / "bin.000002", {0: (1, 3)}, [4, 5])
    b = st.new_subdir("b-1-2")
    data = E.MAGIC + fde() + gtid_list_ev([(0, 1, 2)]) + trx(6) + trx(7)
    (st.subdir_path(b) / "other.000004").write_bytes(data)
    st.save_meta(RelayMeta(b, "b-1-2", "h:2", "other.000004", 999, len(data), "0-1-7"))
    r = RelayReader(st)
    assert [e.gtid for e in r.events(gtid="0-1-3") if e.gtid] == ["0-1-4", "0-1-5", "0-1-6", "0-1-7"]
    assert [e.gtid for e in r.events(gtid="0-1-5") if e.gtid] == ["0-1-6", "0-1-7"]
    assert [e.gtid for e in r.events(gtid="") if e.gtid] == [f"0-1-{n}" for n in range(1, 8)]


def _cfg(opts: str):
    import tomllib

    text = f"""
[clusters.c.hosts.db1]
user = "u"
password = "p"
[tasks.r]
kind = "relay"
cluster = "c"
relay_dir = "/tmp/x"
{opts}
"""
    return parse_config(tomllib.loads(text))


def test_relay_options_parse_and_errors():
    t = _cfg('server_id = 9\nstart_from = "gtid:0-1-5"\nmax_size_mb = 100').task("r")
    assert t.kind == "relay" and t.options.server_id == 9 and t.options.max_size_mb == 100
    with pytest.raises(Exception, match=r"tasks\.r\.start_from: must be"):
        _cfg('start_from = "yesterday"')
    with pytest.raises(Exception, match=r"tasks\.r\.hartbeat: unknown key \(did you mean 'heartbeat'\?\)"):
        _cfg("hartbeat = 2.0")


@pytest.mark.parametrize("args,msg", [
    (["relay", "--host", "h"], "missing --user, --password-file, --relay-dir"),
    (["relay", "--host", "h", "--user", "u", "--password-file", "/nonexistent/pw", "--relay-dir", "/tmp/r"],
     "cannot read password file"),
    (["relay", "--host", "h", "--user", "u", "--password-file", "/etc/hostname", "--relay-dir", "/tmp/r",
      "--server-id", "0"], "--server-id must be between"),
])
def test_cli_bad_input_is_one_line_exit_2(args, msg):
    r = subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True)
    assert r.returncode == 2
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_bytes_behind_across_files():
    from console.engine.relay.status import bytes_behind

    logs = [("b.000001", 1000), ("b.000002", 500), ("b.000003", 300)]
    assert bytes_behind("b.000003", 100, "b.000003", 300, logs) == 200
    assert bytes_behind("b.000001", 900, "b.000003", 250, logs) == 100 + 500 + 250
    assert bytes_behind("b.000009", 4, "b.000003", 250, logs) is None   # not listed upstream
    assert bytes_behind("", 4, "b.000003", 250, logs) is None


def test_rate_meter():
    from console.engine.relay.status import RateMeter

    m = RateMeter()
    for i in range(6):
        m.add(events=i * 1000, nbytes=i * 2_000_000, now=100.0 + i)
    ev_s, mb_s = m.rates()
    assert round(ev_s) == 1000 and round(mb_s, 3) == 2.0
    assert list(m.history)[-1] == mb_s and len(m.history) == 6
