"""The recovery history as the engine serves it (no server): ids, clusters,
durations, a running or interrupted journal, and acknowledging with the
cluster's name typed, audited either way."""

import time

import pytest

from console.engine.topology.actions.history import STALE_AFTER, journal_outcome
from console.errors import ConfirmationRequired
from tests.tui.fixed import fixed_engine
from tests.tui.fixed_recoveries import running_journal, write_recoveries


def test_journal_outcome():
    """The outcome comes last; until then the journal is running (between
    two steps too), or was left by an engine that died."""
    now = time.time()
    assert journal_outcome({"outcome": "refused"}, now - 10 * STALE_AFTER, now) == "refused"
    assert journal_outcome({"steps": [{"outcome": "ok"}]}, now - 5, now) == "running"
    assert journal_outcome({}, now - STALE_AFTER - 1, now) == "interrupted"


def test_engine_recoveries(tmp_path):
    engine = fixed_engine(tmp_path)
    write_recoveries(engine.state.root)
    running_journal(engine.state.root, 1)
    recs = engine.recoveries("prod")
    assert [r.kind for r in recs] == ["failover", "switchover", "reattach", "switchover"]
    assert {r.cluster for r in recs} == {"prod"}
    assert recs[0].id == "20231114T221500Z-a1b2c3" and recs[0].duration_ms == 1840.0
    assert recs[0].acknowledged and recs[0].acknowledged_by == "console:4242"
    assert recs[2].id == "20231114T222000-000-reattach" and recs[2].acknowledged is None
    assert recs[3].outcome == "running" and 900 < recs[3].duration_ms < 60_000
    with pytest.raises(Exception, match="no cluster named 'nope'"):
        engine.recoveries("nope")


def test_acknowledge_needs_the_cluster_name(tmp_path):
    engine = fixed_engine(tmp_path)
    write_recoveries(engine.state.root)
    for wrong in (None, "", "Prod"):
        with pytest.raises(ConfirmationRequired, match="confirm by typing 'prod'"):
            engine.acknowledge("prod", confirm=wrong, actor="t")
    assert not any(r.acknowledged for r in engine.recoveries("prod")[1:2])
    assert engine.acknowledge("prod", confirm="prod", actor="t") == "acknowledged 2 recovery(ies) of prod"
    assert engine.recoveries("prod")[1].acknowledged_by == "t"
    outcomes = [e.outcome for _, e in engine.events_since(0, audited_only=True) if e.action == "acknowledge"]
    assert outcomes == ["refused"] * 3 + ["ok"]
