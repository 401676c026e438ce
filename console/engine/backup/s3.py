"""Backup storage in an S3 bucket (AWS, MinIO, any S3-compatible server).

Keys live under ``s3://bucket/prefix/``.  A PUT is atomic by nature (a
reader sees the old object or the new one), so ``put`` is one PUT; big
objects (snapshots) go through ``writer``: a multipart upload in 8 MiB
parts (4 uploaded at once), completed when the block ends without error
and aborted otherwise.
``reader`` streams the object's body (a restore never holds a snapshot in
memory).

One writer per storage: the lease object ``prefix/.lock`` (JSON: owner,
pid, host, expiry) is created with a conditional write (``If-None-Match:
*``), renewed every ``LEASE_TTL / 3`` seconds with ``If-Match`` on its
ETag, and deleted on release.  A lease that expired (its holder died
without releasing it) or whose holder is a dead process on this host is
taken over, again conditionally on its ETag.  The holder stops writing
when its last renewal is older than two thirds of the lease's life (a
partition cannot leave two writers), and for good when a renewal finds
the lease taken.  Servers that ignore the
conditional headers (old MinIO releases) cannot make this safe; the lease
then still names the holder (the lease is read back and must be ours).

Credentials come from ``credentials_file`` or boto3's usual sources (the
environment: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``; ``~/.aws/credentials``; an instance role), never from
the URL or argv; errors name the bucket and key, never a credential.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from console.engine.backup.storage import Storage, StorageError, _check_key
from console.kinds.storage_url import StorageURL, read_credentials

PART = 8 << 20              # multipart part size (S3's minimum is 5 MiB)
PARTS_IN_FLIGHT = 4         # parts uploaded at once (memory: this many parts)
LEASE_KEY = ".lock"
LEASE_TTL = 30.0            # seconds; renewed every third of it
STALE_UPLOAD = 24 * 3600.0  # multipart uploads older than this are aborted by clean_temp


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _status(e: Exception) -> int:
    return int(getattr(e, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _missing(e: Exception) -> bool:
    return _code(e) in ("NoSuchKey", "404", "NotFound") or _status(e) == 404


def _why(e: Exception) -> str:
    """A one-line reason from a botocore error (it never holds credentials)."""
    if type(e).__name__ == "NoCredentialsError":
        return ("no S3 credentials: set the task's credentials_file, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY in the environment")
    code = _code(e)
    if code:
        msg = getattr(e, "response", {}).get("Error", {}).get("Message", "") or ""
        return f"{code}: {msg}".rstrip(": ")
    return f"{type(e).__name__}: {e}"


class S3Storage(Storage):
    read_ahead = 8
    def __init__(self, url: StorageURL, *, endpoint: str = "", region: str = "us-east-1",
                 credentials_file: str | None = None, create: bool | None = True):
        import boto3
        import botocore.config

        self.url = url
        self.bucket = url.bucket
        self.base = f"{url.prefix}/" if url.prefix else ""
        self.endpoint = endpoint
        kw: dict = {}
        if credentials_file:
            try:
                access, secret, token = read_credentials(credentials_file)
            except ValueError as e:
                raise StorageError(str(e)) from None
            kw = {"aws_access_key_id": access, "aws_secret_access_key": secret}
            if token:
                kw["aws_session_token"] = token
        session = boto3.session.Session(**kw)
        cfg = botocore.config.Config(
            region_name=region or "us-east-1", connect_timeout=5, read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path" if endpoint else "auto"})
        self.s3 = session.client("s3", endpoint_url=endpoint or None, config=cfg)
        self._errors = self._exceptions()
        self._lease_lost = ""
        self._lease_until = 0.0   # while a lease is held: writes stop when it could have expired
        if create is False:
            self._check_bucket()
            if not self.list():
                raise StorageError(f"no backup at {self.describe()}: nothing is stored under that "
                                   f"prefix (is the task's storage setting right? has the backup "
                                   f"task run?)")

    def _exceptions(self) -> tuple[type[BaseException], ...]:
        import botocore.exceptions as bx

        return (bx.ClientError, bx.BotoCoreError)

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"{self.url}{where}"

    def _k(self, key: str) -> str:
        return self.base + _check_key(key)

    def _fail(self, what: str, key: str, e: Exception) -> StorageError:
        if _code(e) == "NoSuchBucket":
            return StorageError(f"{self.describe()}: bucket {self.bucket} does not exist")
        return StorageError(f"cannot {what} backup object {key} in {self.describe()}: {_why(e)}")

    def _check_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except self._errors as e:
            if _missing(e) or _code(e) == "NoSuchBucket":
                raise StorageError(f"{self.describe()}: bucket {self.bucket} does not exist "
                                   f"(create it first)") from None
            raise StorageError(f"{self.describe()}: {_why(e)}") from None

    def _writable(self) -> None:
        if self._lease_lost:
            raise StorageError(self._lease_lost)
        if self._lease_until and time.time() > self._lease_until:
            raise StorageError(f"the writer lease of {self.describe()} could not be renewed for "
                               f"{LEASE_TTL:.0f} s (another writer may take it over): not writing")

    # ---- objects --------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        self._writable()
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)
        except self._errors as e:
            raise self._fail("write", key, e) from None

    def get(self, key: str) -> bytes:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()
        except self._errors as e:
            if _missing(e):
                raise StorageError(f"cannot read backup object {key}: no such object") from None
            raise self._fail("read", key, e) from None

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]
        except self._errors as e:
            if _missing(e):
                raise StorageError(f"cannot read backup object {key}: no such object") from None
            raise self._fail("read", key, e) from None
        try:
            yield _Body(body, self, key)  # type: ignore[misc]
        finally:
            body.close()

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        self._writable()
        w = _MultipartWriter(self, key)
        try:
            yield w  # type: ignore[misc]
            w.complete()
        except BaseException:
            w.abort()
            raise

    def list(self, prefix: str = "") -> list[str]:
        full = self.base + (prefix.rstrip("/") + "/" if prefix else "")
        out = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=full):
                for o in page.get("Contents", ()):
                    rel = o["Key"][len(self.base):]
                    if rel and not any(p.startswith(".") or not p for p in rel.split("/")):
                        out.append(rel)
        except self._errors as e:
            raise self._fail("list", prefix or "/", e) from None
        return sorted(out)

    def delete(self, key: str) -> None:
        self._writable()
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self._k(key))
        except self._errors as e:
            if not _missing(e):
                raise self._fail("delete", key, e) from None

    def size(self, key: str) -> int:
        try:
            return int(self.s3.head_object(Bucket=self.bucket, Key=self._k(key))["ContentLength"])
        except self._errors as e:
            if _missing(e):
                raise StorageError(f"no backup object {key}") from None
            raise self._fail("stat", key, e) from None

    def remove_tree(self, prefix: str) -> None:
        for k in self.list(prefix):
            self.delete(k)

    def clean_temp(self, prefix: str = "") -> int:
        """Abort multipart uploads under ``prefix`` older than a day (what a
        writer killed mid-snapshot left; a bucket lifecycle rule
        AbortIncompleteMultipartUpload does the same)."""
        n = 0
        try:
            pages = self.s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.base + prefix)
            for page in pages:
                for u in page.get("Uploads", ()):
                    if time.time() - u["Initiated"].timestamp() > STALE_UPLOAD:
                        self.s3.abort_multipart_upload(Bucket=self.bucket, Key=u["Key"],
                                                       UploadId=u["UploadId"])
                        n += 1
        except self._errors:
            return n  # best effort: some servers do not list uploads
        return n

    # ---- the single writer's lease ----------------------------------------------------

    def lock(self, owner: str, refused=None) -> Lease:
        def in_use(holder: str, pid: int | None) -> StorageError:
            who = f"{holder or 'another process'}" + (f" (pid {pid})" if pid else "")
            return StorageError(f"backup storage {self.describe()} is in use by {who}; one "
                                f"backup task per storage")

        self._check_bucket()
        return Lease(self, owner, refused or in_use)


class _Body(io.RawIOBase):
    """A streaming GET body whose errors are StorageErrors naming the object."""

    def __init__(self, body, store: S3Storage, key: str):
        super().__init__()
        self._body, self._store, self._key = body, store, key

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            return self._body.read(None if n < 0 else n)
        except (*self._store._errors, OSError) as e:
            raise StorageError(f"reading backup object {self._key} failed: {_why(e)}") from None

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class _MultipartWriter(io.RawIOBase):
    """Buffers ``PART`` bytes per part, uploads up to ``PARTS_IN_FLIGHT``
    parts at once; an object smaller than one part is a single PUT."""

    def __init__(self, store: S3Storage, key: str):
        super().__init__()
        self.store, self.key, self.full = store, key, store._k(key)
        self.buf = bytearray()
        self.upload_id = ""
        self.parts: list[dict] = []
        self._pool = None
        self._inflight: list = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buf += data
        while len(self.buf) >= PART:
            self._part(bytes(self.buf[:PART]))
            del self.buf[:PART]
        return len(data)

    def _part(self, data: bytes) -> None:
        from concurrent.futures import ThreadPoolExecutor

        s3, b = self.store.s3, self.store.bucket
        try:
            if not self.upload_id:
                self.store._writable()
                self.upload_id = s3.create_multipart_upload(Bucket=b, Key=self.full)["UploadId"]
                self._pool = ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="s3-part")
        except self.store._errors as e:
            raise self.store._fail("write", self.key, e) from None
        while len(self._inflight) >= PARTS_IN_FLIGHT:
            self._settle(self._inflight.pop(0))
        n = len(self.parts) + len(self._inflight) + 1
        assert self._pool is not None
        self._inflight.append((n, self._pool.submit(
            s3.upload_part, Bucket=b, Key=self.full, UploadId=self.upload_id, PartNumber=n,
            Body=data)))

    def _settle(self, item) -> None:
        n, fut = item
        try:
            r = fut.result()
        except self.store._errors as e:
            raise self.store._fail("write", self.key, e) from None
        self.parts.append({"PartNumber": n, "ETag": r["ETag"]})

    def _drain(self) -> None:
        while self._inflight:
            self._settle(self._inflight.pop(0))

    def complete(self) -> None:
        if not self.upload_id:
            self.store.put(self.key, bytes(self.buf))
            return
        if self.buf:
            self._part(bytes(self.buf))
            self.buf = bytearray()
        self._drain()
        self._shutdown()
        self.parts.sort(key=lambda p: p["PartNumber"])
        self.store._writable()
        try:
            self.store.s3.complete_multipart_upload(
                Bucket=self.store.bucket, Key=self.full, UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts})
        except self.store._errors as e:
            raise self.store._fail("write", self.key, e) from None
        self.upload_id = ""

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        self._shutdown()
        self._inflight = []
        if self.upload_id:
            with contextlib.suppress(*self.store._errors):
                self.store.s3.abort_multipart_upload(Bucket=self.store.bucket, Key=self.full,
                                                     UploadId=self.upload_id)
            self.upload_id = ""


class Lease:
    """The storage's writer lease (see the module doc); ``close()`` releases it."""

    def __init__(self, store: S3Storage, owner: str, refused):
        self.store, self.owner = store, owner
        self.key = store.base + LEASE_KEY
        self.host = socket.gethostname()
        self.token = os.urandom(8).hex()
        self.etag = ""
        self._stop = threading.Event()
        self._acquire(refused)
        self._thread = threading.Thread(target=self._renew, name="backup-s3-lease", daemon=True)
        self._thread.start()

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "pid": os.getpid(), "host": self.host,
                           "token": self.token, "expires": time.time() + LEASE_TTL}).encode()

    def _put(self, **cond) -> bool:
        """A conditional PUT of our lease: False when the condition failed."""
        s = self.store
        try:
            r = s.s3.put_object(Bucket=s.bucket, Key=self.key, Body=self._body(), **cond)
        except s._errors as e:
            if _code(e) in ("PreconditionFailed", "ConditionalRequestConflict") or \
                    _status(e) in (409, 412):
                return False
            raise StorageError(f"cannot write the lease {self.key} in {s.describe()}: "
                               f"{_why(e)}") from None
        self.etag = r["ETag"]
        # our own expiry, minus a margin for clock skew and the request's time
        self.store._lease_until = time.time() + LEASE_TTL * 2 / 3
        return True

    def _acquire(self, refused) -> None:
        s = self.store
        if self._put(IfNoneMatch="*"):
            return self._confirm(refused)
        try:
            r = s.s3.get_object(Bucket=s.bucket, Key=self.key)
            etag, held = r["ETag"], json.loads(r["Body"].read() or b"{}")
        except s._errors as e:
            if _missing(e):                 # released meanwhile: try once more
                if self._put(IfNoneMatch="*"):
                    return self._confirm(refused)
                raise refused("another process", None) from None
            raise StorageError(f"cannot read the lease {self.key} in {s.describe()}: "
                               f"{_why(e)}") from None
        except ValueError:
            etag, held = "", {}
        if not (etag and _stale(held, self.host) and self._put(IfMatch=etag)):
            raise refused(_holder(held), held.get("pid") if isinstance(held, dict) else None)
        self._confirm(refused)

    def _confirm(self, refused) -> None:
        """Read the lease back: on a server that ignored the condition, a
        racing writer's lease may have won."""
        s = self.store
        try:
            held = json.loads(s.s3.get_object(Bucket=s.bucket, Key=self.key)["Body"].read())
        except (*s._errors, ValueError):
            held = {}
        if held.get("token") != self.token:
            s._lease_until = 0.0
            raise refused(_holder(held), held.get("pid"))

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_TTL / 3):
            try:
                ok = self._put(IfMatch=self.etag)
            except StorageError:
                continue                    # retried at the next period; expiry is far
            if not ok:
                self.store._lease_lost = (f"lost the writer lease of {self.store.describe()} "
                                          f"(another writer took it over): stopped writing")
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        s = self.store
        s._lease_until = 0.0
        if s._lease_lost:
            return
        try:
            r = s.s3.head_object(Bucket=s.bucket, Key=self.key)
            if r["ETag"] == self.etag:
                s.s3.delete_object(Bucket=s.bucket, Key=self.key)
        except s._errors:
            pass                            # expires by itself


def _holder(held) -> str:
    """Who holds the lease: its owner as it named itself (plus its host when
    that is another machine: the pid alone would mislead)."""
    if not isinstance(held, dict):
        return "another process"
    host = held.get("host", "")
    local = host == socket.gethostname()
    return f"{held.get('owner') or 'another process'}" + ("" if local or not host else f" on {host}")


def _stale(held, host: str) -> bool:
    """The lease expired, or its holder is a process of this host that is gone."""
    if not isinstance(held, dict):
        return True
    if float(held.get("expires", 0)) < time.time():
        return True
    pid = held.get("pid")
    if held.get("host") == host and isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False
