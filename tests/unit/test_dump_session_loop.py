"""The dump-session loop's policy for a server_id clash (error 4052) and
for a task of a shared fleet that lost its lease (pure logic: a fake
coordinator, sessions that raise what a server would)."""

from __future__ import annotations

import pytest

from console.engine.coord.coordinator import Fenced
from console.engine.dumpsession import SessionLoop
from console.engine.task import Task
from console.errors import UserError
from console.mysql.binlog.client import ER_SLAVE_SAME_ID, DumpError


class Coord:
    def __init__(self, shared: bool, ttl: int = 3):
        self.shared, self.ttl, self.engine_id, self.lease = shared, ttl, "e1", True

    def holds(self, task_id: str) -> bool:
        return self.lease

    def guard(self, task_id: str) -> None:
        if not self.lease:
            raise Fenced(f"task {task_id}: lost its lease")


class Engine:
    def __init__(self, coord: Coord):
        self.coordinator = coord
        self.events: list[str] = []

    def event(self, task_id: str, msg: str, level: str = "info") -> None:
        self.events.append(msg)

    def audit(self, *a) -> None:
        pass


class Clock:
    def __init__(self, monkeypatch):
        self.t = 1000.0
        monkeypatch.setattr("console.engine.dumpsession.time.monotonic", lambda: self.t)


def loop(coord: Coord, outcomes: list, clock: Clock, step: float = 1.0, streams: float = 0.0):
    """A loop whose sessions raise ``outcomes`` in turn (True: done, False:
    the next one at once), each lasting ``streams`` seconds; each wait moves
    the clock by ``step``.  Returns (the loop, sessions run)."""
    task = Task("r1")
    task.engine = Engine(coord)
    task._resume.set()
    runs = []

    def session():
        runs.append(clock.t)
        clock.t += streams
        out = outcomes.pop(0)
        if isinstance(out, BaseException):
            raise out
        return out

    def wait(s):
        clock.t += step

    return SessionLoop(task, session=session, end=lambda: None, wait=wait,
                       reconnect_base=0.1, reconnect_max=1.0), runs


def clash() -> DumpError:
    return DumpError("error 4052 from dump: another replica connected with our server_id",
                     code=ER_SLAVE_SAME_ID, transient=False)


def test_a_clash_outside_a_fleet_fails_at_once(monkeypatch):
    clock = Clock(monkeypatch)
    sl, runs = loop(Coord(shared=False), [clash(), True], clock)
    with pytest.raises(UserError, match="4052"):
        sl.run()
    assert len(runs) == 1


def test_a_fleet_task_holding_its_lease_retries_a_clash_for_two_lease_periods(monkeypatch):
    clock = Clock(monkeypatch)
    sl, runs = loop(Coord(shared=True, ttl=3), [clash(), clash(), True], clock)
    sl.run()   # the stale owner's session was fenced: the third one streams
    assert len(runs) == 3


def test_a_clash_that_lasts_past_two_lease_periods_fails(monkeypatch):
    clock = Clock(monkeypatch)
    sl, runs = loop(Coord(shared=True, ttl=3), [clash()] * 20 + [True], clock, step=1.0)
    with pytest.raises(UserError, match="4052"):
        sl.run()
    assert 6 <= len(runs) <= 8   # 2 x 3 s of clashes, one a second


def test_a_replica_that_takes_the_id_again_later_fails_the_task(monkeypatch):
    """A second clash 40 s after the first (a replica that reconnects) is
    past the grace of its streak (6 s) and inside its span (10 x 6 s): the
    operator error it is."""
    clock = Clock(monkeypatch)
    sl, runs = loop(Coord(shared=True, ttl=3), [clash(), False, clash(), True], clock, streams=20.0)
    with pytest.raises(UserError, match="4052"):
        sl.run()
    assert len(runs) == 3


def test_a_hand_over_long_after_the_last_clash_is_a_new_streak(monkeypatch):
    clock = Clock(monkeypatch)
    sl, runs = loop(Coord(shared=True, ttl=3), [clash(), False, clash(), True], clock, streams=61.0)
    sl.run()
    assert len(runs) == 4


def test_a_fleet_task_that_lost_its_lease_opens_no_session(monkeypatch):
    clock = Clock(monkeypatch)
    coord = Coord(shared=True)
    coord.lease = False
    sl, runs = loop(coord, [True], clock)
    with pytest.raises(Fenced):
        sl.run()
    assert runs == []


def test_a_clash_after_the_lease_is_lost_is_not_retried(monkeypatch):
    clock = Clock(monkeypatch)
    coord = Coord(shared=True)
    outcomes = [clash(), True]
    sl, runs = loop(coord, outcomes, clock)
    real = sl.session

    def session():
        coord.lease = False   # fenced while the session ran
        return real()

    sl.session = session
    with pytest.raises(UserError, match="4052"):
        sl.run()
    assert len(runs) == 1
