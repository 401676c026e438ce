"""A migration taken over in a shared fleet resumes the published record of
its run: only an unfinished one, only when this engine has no checkpoint
of its own (engine/migration/fleet_resume.py)."""


def test_a_migration_resumes_only_an_unfinished_fleet_checkpoint(tmp_path):
    from types import SimpleNamespace

    from console.engine.migration.checkpoint import Checkpoint
    from console.engine.migration.fleet_resume import take_fleet_checkpoint

    rec = Checkpoint.record(database="d", table="t", alter="ADD x INT", applied_pos="0-1-5", copy_min=(1,),
                            copy_max=(9,), copy_last=(4,), rows_copied=4, copy_done=False, run="r1")
    stored: dict = {}
    coord = SimpleNamespace(shared=True, checkpoint=lambda task, name: stored.get((task, name)))
    engine = SimpleNamespace(coordinator=coord)
    cp = Checkpoint(tmp_path / "checkpoint.json")
    assert take_fleet_checkpoint(engine, "m", cp) == "" and not cp.exists()      # none published
    stored[("m", "migration")] = {"engine": "h:1", "value": {"rows": 9, "done": True, "complete": True}}
    assert take_fleet_checkpoint(engine, "m", cp) == "" and not cp.exists()      # it completed
    stored[("m", "migration")] = {"engine": "h:1", "value": {"rows": 4, "record": rec}}
    assert take_fleet_checkpoint(engine, "m", cp) == "h:1"
    assert cp.load("d", "t", "ADD x INT")["last"] == (4,)
    cp.write(dict(rec, run="mine"))                                             # this engine's own
    assert take_fleet_checkpoint(engine, "m", cp) == "" and cp.load("d", "t", "ADD x INT")["run"] == "mine"
    coord.shared = False
    cp.remove()
    assert take_fleet_checkpoint(engine, "m", cp) == "" and not cp.exists()
