"""Which free tasks an engine of a shared fleet takes (engine/fleet.py
``_take``, pure logic over a fake coordinator and a fake clock): its share
first, spread over the engines; a task no other engine takes (their files
lack its cluster) past the share after ``ORPHAN_AFTER`` seconds."""

from __future__ import annotations

from console.engine import fleet as F
from console.engine.fleet import ORPHAN_AFTER, Fleet


class Coord:
    shared = True
    description = "fake"

    def __init__(self, engine_id: str, owners: dict[str, str], engines: list[str]):
        self.engine_id, self._owners, self._engines = engine_id, owners, engines

    def owners(self):
        return dict(self._owners)

    def engines(self):
        return list(self._engines)

    def held(self):
        return [t for t, e in self._owners.items() if e == self.engine_id]

    def holds(self, task_id):
        return self._owners.get(task_id) == self.engine_id

    def claim(self, task_id):
        if task_id in self._owners:
            return False
        self._owners[task_id] = self.engine_id
        return True

    def paused(self, task_id):
        return False


class Task:
    def __init__(self, task_id):
        self.task_id, self.state = task_id, "running"


class Config:
    def __init__(self, names):
        self.tasks = {n: type("TC", (), {"autostart": True})() for n in names}


class Engine:
    def __init__(self, coord, names):
        self.coordinator, self.config, self.running = coord, Config(names), []

    def tasks(self):
        return list(self.running)

    def audit(self, *a):
        pass

    def start_declared(self, name, actor):
        t = Task(name)
        self.running.append(t)
        return t


def fleet(monkeypatch, owners, engines, names, me="e1"):
    clock = [100.0]
    monkeypatch.setattr(F.time, "monotonic", lambda: clock[0])
    coord = Coord(me, owners, engines)
    return Fleet(Engine(coord, names), lambda s: None), coord, clock


def test_an_engine_takes_one_free_task_a_tick_up_to_its_share(monkeypatch):
    f, coord, clock = fleet(monkeypatch, {}, ["e1", "e2"], ["a", "b", "c", "d"])
    for _ in range(4):
        f._take()
        clock[0] += 1
    assert len(coord.held()) == 2   # 4 tasks, 2 engines


def test_a_task_the_other_engines_leave_free_is_taken_past_the_share(monkeypatch):
    """e2's file lacks the cluster of c and d: it never takes them."""
    owners = {"a": "e1", "b": "e1"}
    f, coord, clock = fleet(monkeypatch, owners, ["e1", "e2"], ["a", "b", "c", "d"])
    f._take()
    assert sorted(coord.held()) == ["a", "b"]          # at its share: c and d wait
    clock[0] += ORPHAN_AFTER - 1
    f._take()
    assert sorted(coord.held()) == ["a", "b"]
    clock[0] += 1
    f._take()
    clock[0] += 1
    f._take()
    assert sorted(coord.held()) == ["a", "b", "c", "d"]


def test_a_task_taken_by_another_engine_in_time_is_not_an_orphan(monkeypatch):
    owners = {"a": "e1", "b": "e1", "d": "e2"}
    f, coord, clock = fleet(monkeypatch, owners, ["e1", "e2"], ["a", "b", "c", "d"])
    f._take()
    clock[0] += ORPHAN_AFTER - 1
    owners["c"] = "e2"
    f._take()
    owners.pop("c")     # e2 died; c free again: its time starts over
    clock[0] += 2
    f._take()
    assert sorted(coord.held()) == ["a", "b"]
    clock[0] += ORPHAN_AFTER
    f._take()
    assert sorted(coord.held()) == ["a", "b", "c"]
