"""A real S3 endpoint for the tests: moto's standalone server (``moto[server]``
from PyPI) as a child process on a free port, stopped by its pid."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support.sandboxes import free_port_block

ACCESS, SECRET = "dbopstestaccesskey", "dbops-test-secret-key-not-real"


@contextlib.contextmanager
def s3_server(tmp: Path) -> Iterator[str]:
    """The endpoint URL of a fresh S3 server (its log in ``tmp/moto.log``)."""
    port = free_port_block(1)
    log = open(tmp / "moto.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: see {tmp / 'moto.log'}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def credentials_file(tmp: Path) -> Path:
    p = tmp / "s3.credentials"
    p.write_text(f"[default]\naws_access_key_id = {ACCESS}\naws_secret_access_key = {SECRET}\n")
    p.chmod(0o600)
    return p


def client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS, aws_secret_access_key=SECRET)
