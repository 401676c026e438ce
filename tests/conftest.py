import pytest

from tests.support.sandboxes import SandboxHandle


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
