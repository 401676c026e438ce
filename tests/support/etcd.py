"""A private etcd for tests: Debian's ``etcd`` binary (package
``etcd-server``) on two free ports of the test's block, its data directory
under the test's tmp_path, stopped by its own pid."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.sandboxes import free_port_block

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


class Etcd:
    def __init__(self, directory: Path):
        self.dir = directory
        self.port = free_port_block(2)
        self.url = f"etcd://127.0.0.1:{self.port}"
        client, peer = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.port + 1}"
        directory.mkdir(parents=True, exist_ok=True)
        self.log = open(directory / "etcd.log", "w")  # noqa: SIM115 - closed by stop()
        self.p = subprocess.Popen(
            [ETCD, "--name", "t", "--data-dir", str(directory / "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"t={peer}"], stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        from console.engine.coord.etcdkv import CoordinatorDown, EtcdKV

        kv = EtcdKV((("127.0.0.1", self.port),), timeout=1.0)
        deadline = time.monotonic() + 30
        while True:
            try:
                kv.get(b"/ready")
                return
            except CoordinatorDown:
                if time.monotonic() > deadline or self.p.poll() is not None:
                    self.stop()
                    raise RuntimeError("etcd did not start: "
                                       + (self.dir / "etcd.log").read_text()[-2000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


@pytest.fixture
def etcd(tmp_path):
    if not Path(ETCD).exists():
        pytest.skip("etcd is not installed (Debian package etcd-server; scripts/bootstrap.sh)")
    e = Etcd(tmp_path / "etcd")
    yield e
    e.stop()
