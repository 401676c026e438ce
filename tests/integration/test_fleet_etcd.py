"""Three ``serve`` engines share one fleet through one etcd (issue 17):
six tasks (three relays, two backups, a failover watcher) spread over the
engines; kill -9 one engine: its tasks resume on the others from their
checkpoints within two lease periods; SIGSTOP another past its lease: the
third takes its tasks over, and after SIGCONT the stopped one writes
nothing more for them.  At the end every relay is byte-identical to the
upstream with every transaction once, every backup holds each transaction
once, and no checkpoint in etcd ever moved backwards or came from a stale
owner."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from console.api.client import ApiError, connect
from console.engine.coord.etcd import EtcdCoordinator
from console.engine.coord.forward import key as order_key
from tests.integration.relay_support import (
    Load,
    gtid_pos,
    wait_meta_gtid,
)
from tests.integration.test_serve import assert_consistent
from tests.support.backup_helpers import wait_for
from tests.support.etcd import etcd  # noqa: F401 - the fixture
from tests.support.fleet import (
    TTL,
    assert_backup_contiguous,
    assert_relay_exact,
    backed_up_to,
    backup_task,
    engine_id,
    fleet_state,
    owners,
    reader_of,
)
from tests.support.serving import cluster_part, relay_task

pytestmark = pytest.mark.integration

RELAYS = ("r1", "r2", "r3")
BACKUPS = ("b1", "b2")
TASKS = (*RELAYS, *BACKUPS, "fo")


def fleet_config(h, tmp: Path, n: int) -> Path:
    """Engine n's config: its own state directory, the fleet's tasks on shared storage."""
    text = cluster_part(h, tmp / f"state{n}")
    for i, r in enumerate(RELAYS):
        text += relay_task(r, tmp / r, 5411 + i)
    for i, b in enumerate(BACKUPS):
        text += backup_task(b, tmp / b, 5421 + i)
    text += '\n[tasks.fo]\nkind = "failover"\ncluster = "sandbox"\nautostart = true\n'
    p = tmp / f"engine{n}.toml"
    p.write_text(text)
    return p


class Sampler:
    """Every checkpoint in etcd, read five times a second: (task, engine, order)."""

    def __init__(self, reader: EtcdCoordinator):
        self.reader = reader
        self.seen: list[tuple[str, str, tuple]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for task, name in [*((r, "relay") for r in RELAYS), *((b, "backup") for b in BACKUPS)]:
                try:
                    cp = self.reader.checkpoint(task, name)
                except Exception:  # noqa: BLE001 - a sample missed
                    continue
                if cp:
                    sample = (task, cp["engine"], order_key(cp["order"]))
                    if not self.seen or self.seen[-1] != sample:
                        self.seen.append(sample)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)

    def check(self) -> dict[str, list[str]]:
        """Orders never go down, and once another engine wrote a task's
        checkpoint, an engine that wrote it before never does again (a
        stale owner's late write never lands).  Returns each task's owners
        in order."""
        last: dict[str, tuple] = {}
        hands: dict[str, list[str]] = {}
        for task, engine, order in self.seen:
            assert order >= last.get(task, order), (task, last[task], order)
            last[task] = order
            h = hands.setdefault(task, [])
            if not h or h[-1] != engine:
                assert engine not in h, f"{task}: a late write by {engine} after {h}"
                h.append(engine)
        return hands


def test_three_engines_share_a_fleet_and_take_over_a_dead_or_stopped_ones_tasks(
        sandbox, tmp_path, serve, etcd):  # noqa: F811 - the fixture
    h = sandbox
    reader = reader_of(etcd)
    cfgs = [fleet_config(h, tmp_path, n) for n in (1, 2, 3)]
    sampler = Sampler(reader)
    with Load(h):
        clis = [serve(c, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL)) for c in cfgs]
        ids = {engine_id(c): c for c in clis}
        # ---- they spread over the engines
        got = wait_for(lambda: (o := owners(reader)) and len(o) == len(TASKS) and o, timeout=90,
                       what="every task owned")
        assert set(got.values()) == set(ids), (got, [c.err for c in clis])
        for t in TASKS:
            wait_for(lambda t=t: fleet_state(reader, t) == ("running", got[t]), timeout=60,
                     what=f"{t} running on {got[t]}")
        # ---- the console of any engine shows every task and who runs it
        client = connect(tmp_path / "state1")
        assert client is not None

        def shown():  # its cache of the fleet is at most one tick old
            return {d["task_id"]: (d["engine"], d["state"]) for d in client.tasks()
                    if d["task_id"] in TASKS}

        wait_for(lambda: shown() == {t: (e, "running") for t, e in got.items()}, timeout=10,
                 what="every task and its engine in engine 1's snapshot")

        def status_json():  # `status --json` beside engine 2
            st = json.loads(subprocess.run([sys.executable, "-m", "console", "status", "--json",
                                            "--config", str(cfgs[1])], capture_output=True,
                                           text=True, timeout=60, check=True).stdout)
            return {d["task_id"]: d["engine"] for d in st["tasks"] if d["task_id"] in TASKS}

        wait_for(lambda: status_json() == got, timeout=20, what="status --json of engine 2")
        # ---- a command goes to the engine that runs the task; its pause flag is the fleet's
        e1 = engine_id(clis[0])
        other = next(t for t in RELAYS if got[t] != e1)
        with pytest.raises(ApiError, match=f"task {other} runs on engine {got[other]} of the fleet"):
            client.command(other, "pause")
        own = connect(tmp_path / f"state{clis.index(ids[got['b1']]) + 1}")
        own.command("b1", "pause")
        assert reader.paused("b1")
        own.command("b1", "resume")
        assert not reader.paused("b1")
        # ---- kill -9 the engine of r1: its tasks resume on the others
        victim = ids[got["r1"]]
        lost = sorted(t for t, e in got.items() if e == engine_id(victim))
        time.sleep(1.0)
        victim.p.kill()
        killed_at = time.monotonic()
        assert victim.p.wait(30) == -signal.SIGKILL
        wait_for(lambda: all(owners(reader).get(t, engine_id(victim)) != engine_id(victim) for t in lost),
                 timeout=4 * TTL + 10, what=f"{lost} taken over")
        took = time.monotonic() - killed_at
        assert took <= 2 * TTL + 2, f"taken over after {took:.1f} s"
        after_kill = owners(reader)
        for t in lost:
            wait_for(lambda t=t: fleet_state(reader, t) == ("running", after_kill[t]), timeout=60,
                     what=f"{t} running again")
        # ---- SIGSTOP another engine past its lease: the third takes over
        alive = [c for c in clis if c is not victim]
        stopped = next(c for c in alive if engine_id(c) in after_kill.values())
        third = next(c for c in alive if c is not stopped)
        moved = sorted(t for t, e in after_kill.items() if e == engine_id(stopped))
        stopped.p.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: all(owners(reader).get(t) == engine_id(third) for t in moved),
                     timeout=6 * TTL + 20, what=f"{moved} taken over by the third engine")
            for t in moved:
                wait_for(lambda t=t: fleet_state(reader, t) == ("running", engine_id(third)),
                         timeout=60, what=f"{t} running on the third engine")
            time.sleep(2.0)  # the third writes on
        finally:
            stopped.p.send_signal(signal.SIGCONT)
        try:
            wait_for(lambda: all(any(f"task {t}: ownership lease lost" in ln for ln in stopped.err)
                                 for t in moved), timeout=20, what="the stopped engine fences its tasks")
        except AssertionError:
            raise AssertionError("\n".join(stopped.err[-40:])) from None
        time.sleep(2 * TTL)  # the woken engine had every chance to write late
        assert all(owners(reader).get(t) == engine_id(third) for t in moved)
    end = gtid_pos(h)
    try:
        for r in RELAYS:
            wait_meta_gtid(tmp_path / r, end, timeout=60)
        for b in BACKUPS:
            backed_up_to(tmp_path, b, end)
    except AssertionError as e:
        raise AssertionError(f"{e}; owners {owners(reader)}; "
                             + "\n".join(f"--- {engine_id(c)}\n" + "\n".join(c.err[-30:]) for c in clis)) from None
    for c in (stopped, third):
        c.p.send_signal(signal.SIGTERM)
    for c in (stopped, third):
        assert c.p.wait(60) == 0, c.err
    sampler.stop()
    # ---- nothing lost, nothing twice, nothing backwards, no stale write
    hands = sampler.check()
    for t in [*lost, *moved]:
        if t in hands:
            assert len(hands[t]) >= 2, (t, hands[t])  # its checkpoint moved on under the new owner
    assert {s[0] for s in sampler.seen} == {*RELAYS, *BACKUPS}
    for r in RELAYS:
        assert assert_consistent(tmp_path / r).gtid == end
        assert_relay_exact(h, tmp_path, r)
    for b in BACKUPS:
        assert_backup_contiguous(tmp_path, b)
    for c in clis:
        assert not any("Traceback" in ln for ln in c.err), c.err


def test_a_bad_or_unreachable_coordinator_is_one_line_and_makes_nothing(sandbox, tmp_path):
    from tests.support.sandboxes import free_port_block

    state = tmp_path / "state"
    cfg = tmp_path / "c.toml"
    cfg.write_text(cluster_part(sandbox, state) + relay_task("r", tmp_path / "relay", 5431))
    port = free_port_block(1)
    for url, says in [("zk://127.0.0.1:1", "unknown scheme 'zk'"),
                      ("etcd://127.0.0.1", "is not HOST:PORT"),
                      (f"etcd://127.0.0.1:{port}", f"etcd at 127.0.0.1:{port} is unreachable")]:
        p = subprocess.run([sys.executable, "-m", "console", "serve", "--config", str(cfg),
                            "--coordinator", url], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], p.stderr
        assert not state.exists() and not (tmp_path / "relay").exists()


def test_a_task_declared_by_one_engine_is_taken_over_by_an_engine_whose_file_lacks_it(
        sandbox, tmp_path, serve, etcd):  # noqa: F811 - the fixture
    """Task definitions live in etcd: engine 1's file declares relay `ra`,
    engine 2's only the cluster.  Engine 2 adopts `ra` (its console and
    `status --json` list it as declared), a definition it cannot read (an
    unknown cluster) is left out in one line, and after kill -9 of engine 1
    engine 2 runs `ra` on from its checkpoint: byte-identical, every
    transaction once."""
    h = sandbox
    reader = reader_of(etcd)
    reader.define_tasks({"elsewhere": {"kind": "relay", "cluster": "nowhere", "relay_dir": "/nonexistent",
                                       "server_id": 5499, "autostart": True}})
    cfg1, cfg2 = tmp_path / "engine1.toml", tmp_path / "engine2.toml"
    cfg1.write_text(cluster_part(h, tmp_path / "state1") + relay_task("ra", tmp_path / "ra", 5441))
    cfg2.write_text(cluster_part(h, tmp_path / "state2"))
    with Load(h):
        e1 = serve(cfg1, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
        wait_for(lambda: fleet_state(reader, "ra") == ("running", engine_id(e1)), timeout=60,
                 what="ra running on engine 1")
        e2 = serve(cfg2, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
        wait_for(lambda: any("task ra: declared by another engine of the fleet, adopted" in ln
                             for ln in e2.err), timeout=30, what="engine 2 adopts ra")
        left_out = [ln for ln in e2.err if "fleet task elsewhere left out" in ln]
        assert len(left_out) == 1 and "no cluster named 'nowhere'" in left_out[0], e2.err
        client = wait_for(lambda: connect(tmp_path / "state2"), timeout=30, what="engine 2's API")
        wait_for(lambda: any(d["task_id"] == "ra" and d["declared"] for d in client.tasks()), timeout=10,
                 what="ra declared in engine 2's task list")
        st = json.loads(subprocess.run([sys.executable, "-m", "console", "status", "--json", "--config",
                                        str(cfg2)], capture_output=True, text=True, timeout=60,
                                       check=True).stdout)
        assert {d["task_id"]: d["engine"] for d in st["tasks"]}.get("ra") == engine_id(e1)
        time.sleep(1.0)
        e1.p.kill()
        assert e1.p.wait(30) == -signal.SIGKILL
        wait_for(lambda: fleet_state(reader, "ra") == ("running", engine_id(e2)), timeout=4 * TTL + 30,
                 what="ra taken over by engine 2")
    end = gtid_pos(h)
    wait_meta_gtid(tmp_path / "ra", end, timeout=60)
    e2.p.send_signal(signal.SIGTERM)
    assert e2.p.wait(60) == 0, e2.err
    assert not any("Traceback" in ln for ln in e2.err), e2.err
    assert assert_consistent(tmp_path / "ra").gtid == end
    assert_relay_exact(h, tmp_path, "ra")
    assert "elsewhere" not in {d["task_id"] for d in st["tasks"] if d.get("declared")}
