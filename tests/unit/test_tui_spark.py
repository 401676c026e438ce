"""Sparklines measured from zero with units and min/max; tables that drop
their minor columns first."""

from console.tui.widgets.spark import bars, spark_text
from console.tui.widgets.tables import fit_columns


def ms(v):
    return f"{v * 1000:.0f} ms"


def test_small_lag_stays_low():
    """0-3 ms of lag under a 1 s floor draws baseline bars, not full height."""
    assert bars([0.0, 0.001, 0.003, 0.002], 1.0) == "▁▁▁▁"
    t = spark_text("lag", [0.0, 0.003], 60, floor=1.0, fmt=ms).plain
    assert "min 0 ms max 3 ms (bars 0..1000 ms)" in t


def test_bars_from_zero():
    assert bars([0, 5, 10], 10) == "▁▅█"
    assert bars([10, 10], 10) == "██"          # a flat high series is high, not empty
    assert bars([], 10) == ""


def test_columns_by_priority():
    cols = (("host", "Host", 8), ("gtid", "GTID", 20), ("role", "Role", 8), ("lag", "Lag", 6))
    assert fit_columns(cols, ("host", "role", "lag", "gtid"), 200) == [
        ("host", "Host"), ("gtid", "GTID"), ("role", "Role"), ("lag", "Lag")]
    assert fit_columns(cols, ("host", "role", "lag", "gtid"), 30) == [
        ("host", "Host"), ("role", "Role"), ("lag", "Lag")]
    assert fit_columns(cols, ("host", "role"), 3) == [("host", "Host")]  # the key column stays
