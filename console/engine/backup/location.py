"""A backup task's storage from its options: the location (``storage``: a
directory, ``file:///path`` or ``s3://bucket/prefix``) and, with a key
configured, client-side encryption around it (``crypto.py``)."""

from __future__ import annotations

from console.engine.backup.crypto import CryptStorage
from console.engine.backup.storage import LocalStorage, Storage, StorageError
from console.kinds import storage_url
from console.secret import read_key


def encryption_key(options) -> bytes | None:
    """The task's key (None when it has none); StorageError naming the source."""
    file, env = getattr(options, "encryption_key_file", None), getattr(options, "encryption_key_env", "")
    if not file and not env:
        return None
    try:
        return read_key(file, env)
    except ValueError as e:
        which = "encryption_key_file" if file else "encryption_key_env"
        raise StorageError(f"{which}: {e}") from None


def open_storage(options, *, create: bool | None = True) -> CryptStorage:
    """``create``: as for ``LocalStorage`` (False: the backup must exist)."""
    try:
        url = storage_url.parse(str(options.storage))
    except ValueError as e:
        raise StorageError(f"storage: {e}") from None
    inner: Storage
    if url.scheme == "s3":
        from console.engine.backup.s3 import S3Storage

        creds = getattr(options, "credentials_file", None)
        inner = S3Storage(url, endpoint=getattr(options, "s3_endpoint", ""),
                          region=getattr(options, "s3_region", "us-east-1"),
                          credentials_file=str(creds) if creds else None, create=create)
    else:
        inner = LocalStorage(url.path, create=create)
    return CryptStorage(inner, encryption_key(options))
