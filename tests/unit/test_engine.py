import threading
import time
from dataclasses import FrozenInstanceError, dataclass

import pytest

from console.config import parse_config
from console.engine.engine import Engine
from console.engine.task import DONE, FAILED, PAUSED, RUNNING, Task, command
from console.errors import CommandError, ConfirmationRequired, UserError


@dataclass(frozen=True)
class CountDetail:
    count: int


class Counter(Task):
    kind = "counter"

    def __init__(self, task_id, fail_at=None):
        super().__init__(task_id)
        self.count = 0
        self.fail_at = fail_at
        self.ticked = threading.Event()

    def run(self):
        while True:
            self.checkpoint()
            self.count += 1
            self.ticked.set()
            if self.fail_at and self.count >= self.fail_at:
                raise UserError("counter hit its limit")
            time.sleep(0.005)

    def detail(self):
        return CountDetail(self.count)

    @command(help="set the counter")
    def set_count(self, value: int):
        self.count = int(value)
        return self.count

    @command(dangerous=True, help="reset to zero")
    def reset(self):
        self.count = 0


@pytest.fixture
def engine(tmp_path):
    cfg = parse_config({"state_dir": str(tmp_path / "state")})
    e = Engine(cfg)
    yield e
    e.shutdown()


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_lifecycle_pause_resume_stop(engine):
    t = engine.add_task(Counter("c1"))
    assert t.status().state == "new"
    engine.start("c1")
    assert t.ticked.wait(2)
    engine.command("c1", "pause")
    assert t.status().state == PAUSED
    time.sleep(0.05)
    frozen = t.count
    time.sleep(0.05)
    assert t.count <= frozen + 1  # at most the in-flight tick
    engine.command("c1", "resume")
    assert wait_for(lambda: t.count > frozen + 2)
    engine.command("c1", "stop")
    assert t.status().state == DONE


def test_failure_is_recorded(engine):
    t = engine.add_task(Counter("c2", fail_at=3))
    engine.start("c2")
    assert wait_for(lambda: t.state == FAILED)
    st = t.status()
    assert st.last_error == "counter hit its limit"


def test_status_is_frozen(engine):
    t = engine.add_task(Counter("c3"))
    st = t.status()
    with pytest.raises(FrozenInstanceError):
        st.state = RUNNING  # type: ignore[misc]
    assert st.to_dict()["detail"] == {"count": 0}


def test_commands_dispatch_refuse_and_audit(engine):
    engine.add_task(Counter("c4"))
    assert engine.command("c4", "set-count", value=7) == 7
    with pytest.raises(CommandError, match="no command 'nope'"):
        engine.command("c4", "nope")
    with pytest.raises(CommandError, match="no task 'ghost'"):
        engine.command("ghost", "pause")
    with pytest.raises(CommandError, match="only a running task can pause"):
        engine.command("c4", "pause")
    with pytest.raises(ConfirmationRequired, match="type|typing"):
        engine.command("c4", "reset")
    engine.command("c4", "reset", confirm="c4")
    assert engine.task("c4").count == 0
    entries = engine.state.read_audit()
    outcomes = [(e.action, e.outcome) for e in entries if e.target == "c4"]
    assert ("set-count", "ok") in outcomes
    assert ("nope", "refused") in outcomes
    assert ("reset", "refused") in outcomes and ("reset", "ok") in outcomes
    assert all(e.actor for e in entries)


def test_state_changes_are_audited(engine):
    t = engine.add_task(Counter("c5"))
    engine.start("c5")
    t.ticked.wait(2)
    engine.command("c5", "stop")
    states = [e.outcome for e in engine.state.read_audit() if e.target == "c5" and e.action == "state"]
    assert states == ["running", "done"]


def test_events_feed(engine):
    engine.event("monitor:x", "node3 became unreachable", "error")
    evs = engine.events_since(0)
    assert evs[-1][1].outcome == "node3 became unreachable"
    assert engine.events_since(evs[-1][0]) == []


def test_phase_seconds_add_up_per_phase_in_order(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    t = Task("t1")
    assert t.phase_seconds() == {}
    for phase, dt in (("copying", 2.5), ("postponed", 1.0), ("copying", 0.5), ("cutting-over", 0.25)):
        t.set_phase(phase)
        now[0] += dt
    t.set_phase("cutting-over")          # same phase again: not a new entry
    now[0] += 0.25
    assert t.phase_seconds() == {"copying": 3.0, "postponed": 1.0, "cutting-over": 0.5}
    assert list(t.phase_seconds()) == ["copying", "postponed", "cutting-over"]


# ---- what serve uses: remove a task, retry failed autostart tasks, a new config ----------


def test_remove_task_stops_it_and_takes_it_out(engine):
    t = engine.add_task(Counter("c"))
    engine.start("c")
    assert wait_for(t.ticked.is_set)
    assert engine.remove_task("c", actor="serve") is True
    assert t.state == DONE and engine.tasks() == []
    last = engine.state.read_audit()[-1]
    assert (last.actor, last.action, last.target, last.outcome, last.detail) == (
        "serve", "remove", "c", "ok", "done")


class Slow(Counter):
    """Takes a while to stop (a long checkpoint)."""

    def __init__(self, task_id):
        super().__init__(task_id)
        self.release = threading.Event()

    def on_stop_requested(self):
        pass

    def cleanup(self):
        self.release.wait(5)


def test_a_task_that_does_not_stop_in_time_stays_until_it_has(engine):
    t = engine.add_task(Slow("s"))
    engine.start("s")
    assert engine.remove_task("s", actor="serve", wait=0.1) is False
    assert engine.tasks() == [t]
    assert engine.state.read_audit()[-1].outcome == "failed"
    t.release.set()
    assert t.join(5)
    assert engine.remove_task("s", actor="serve") is True and engine.tasks() == []


def test_autostart_retries_a_failed_task_only_when_asked(tmp_path, monkeypatch):
    import console.engine.engine as engine_module

    cfg = parse_config({"state_dir": str(tmp_path / "state"),
                        "clusters": {"c": {"hosts": {"h": {"user": "u", "password": "p"}}}},
                        "tasks": {"f": {"kind": "failover", "cluster": "c", "autostart": True}}})
    attempts = []

    class RefusedOnce(Counter):
        def start_checks(self):
            attempts.append(1)
            if len(attempts) == 1:
                raise UserError("refused once")

    class Kind:
        @staticmethod
        def make_task(engine, tc):
            return RefusedOnce(tc.name)

    monkeypatch.setattr(engine_module, "get_kind", lambda name: Kind)
    e = Engine(cfg)
    try:
        assert e.start_autostart_tasks() == {"f": "refused once"}
        assert e.task("f").state == FAILED
        assert e.start_autostart_tasks() == {} and e.task("f").state == FAILED
        assert e.start_autostart_tasks(retry_failed=True) == {"f": ""}
        assert e.task("f").state == RUNNING and len(attempts) == 2
        assert e.start_autostart_tasks(retry_failed=True) == {}  # a running one is left alone
    finally:
        e.shutdown()


def test_set_config_keeps_the_state_directory(engine, tmp_path):
    engine.set_config(parse_config({"state_dir": str(tmp_path / "state"), "ui": {"theme": "light"}}))
    assert engine.config.ui.theme == "light"
    with pytest.raises(UserError, match="the state directory cannot change under a running engine"):
        engine.set_config(parse_config({"state_dir": str(tmp_path / "elsewhere")}))
    assert engine.config.ui.theme == "light"
