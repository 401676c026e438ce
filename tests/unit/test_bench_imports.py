"""Every benchmark script at least imports (bench/backup_rpo_restore imported
a helper that had been removed, and nothing noticed)."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p for p in BENCH.rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", SCRIPTS, ids=[str(p.relative_to(BENCH)) for p in SCRIPTS])
def test_bench_script_imports(path):
    spec = importlib.util.spec_from_file_location(f"bench_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the scripts run only under __main__
    assert hasattr(module, "main")
