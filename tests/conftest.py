import os
import shutil

import pytest

from tests.support.sandboxes import SandboxHandle
from tests.support.serving import serve  # noqa: F401 - the `serve` fixture, for every test


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture(autouse=True)
def _drop_tmp_path_of_passed_tests(request):
    """Integration tests leave data directories, relay files and backups of
    hundreds of MiB in tmp_path: a passed test's are removed at once so a
    whole run fits a small CI disk (failed ones stay, for a look; so does
    everything with DBOPS_KEEP_SANDBOXES=1)."""
    yield
    rep = getattr(request.node, "rep_call", None)
    path = request.node.funcargs.get("tmp_path")
    if path and rep is not None and rep.passed and not os.environ.get("DBOPS_KEEP_SANDBOXES"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """One shared 3-node sandbox for tests that only read or write their own
    schema.  Tests that change the topology use ``make_sandbox``."""
    h = SandboxHandle(tmp_path_factory.mktemp("sandbox"))
    yield h
    h.stop()


@pytest.fixture
def make_sandbox(tmp_path):
    """Factory for a private sandbox (stopped at the end of the test)."""
    made = []

    def make(replicas: int = 2) -> SandboxHandle:
        h = SandboxHandle(tmp_path / f"sb{len(made)}", replicas=replicas)
        made.append(h)
        return h

    yield make
    for h in made:
        h.stop()
