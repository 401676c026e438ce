"""Where a backup is stored: a local directory or an S3 bucket, by URL.

The ``storage`` option of a backup task is one of::

    /var/backups/dbops/main          a directory (relative: to the config file)
    file:///var/backups/dbops/main   the same, as a URL (absolute paths only)
    s3://bucket/prefix               objects under ``prefix/`` in ``bucket``

Pure parsing (no I/O): ``parse`` returns a ``StorageURL`` or raises
ValueError with the reason, which the config turns into one line naming
the file and the key.  Credentials never belong in the URL (they would
show in status, logs and ``ps``): ``s3://KEY:SECRET@bucket`` is refused.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

SCHEMES = ("file", "s3")
# S3's rules for a bucket name (3-63 characters: lower case, digits, dots, hyphens)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class StorageURL:
    scheme: str          # "file" or "s3"
    path: str = ""       # file: the directory
    bucket: str = ""     # s3
    prefix: str = ""     # s3: "" or "a/b" (no leading or trailing slash)

    def __str__(self) -> str:
        if self.scheme == "file":
            return self.path
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def is_url(value: str) -> bool:
    """True for ``scheme://...`` (anything else is a plain path)."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value))


def parse(value: str) -> StorageURL:
    """A plain path, ``file:///abs/path`` or ``s3://bucket[/prefix]``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("is empty: give a directory, file:///path or s3://bucket/prefix")
    if not is_url(value):
        return StorageURL("file", path=value)
    scheme = value.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme}:// in {value!r} (use a directory, "
                         f"file:///path or s3://bucket/prefix)")
    u = urllib.parse.urlsplit(value)
    if u.query or u.fragment:
        raise ValueError(f"{value!r}: a storage URL takes no ?query or #fragment")
    if scheme == "file":
        if u.netloc not in ("", "localhost"):
            raise ValueError(f"{value!r}: a file URL names an absolute path, file:///path "
                             f"(three slashes)")
        path = urllib.parse.unquote(u.path)
        if not path.startswith("/") or path == "/":
            raise ValueError(f"{value!r}: a file URL needs a directory, file:///path")
        return StorageURL("file", path=path)
    if "@" in u.netloc:
        raise ValueError("credentials do not belong in the storage URL; use credentials_file "
                         "or the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
    bucket = u.netloc
    if not bucket:
        raise ValueError(f"{value!r}: missing bucket, use s3://bucket/prefix")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"{value!r}: {bucket!r} is not a valid bucket name (3-63 characters: "
                         f"lower-case letters, digits, dots and hyphens)")
    prefix = urllib.parse.unquote(u.path).strip("/")
    parts = prefix.split("/") if prefix else []
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ValueError(f"{value!r}: the prefix may not hold empty, '.' or '..' parts or "
                         f"names starting with a dot")
    return StorageURL("s3", bucket=bucket, prefix=prefix)


def check(value: str) -> str | None:
    """The reason ``value`` is no storage location, or None (an option's ``check``)."""
    try:
        parse(value)
    except ValueError as e:
        return str(e)
    return None


def check_endpoint(value: str) -> str | None:
    """``s3_endpoint``: empty (AWS) or an http(s) URL with a host."""
    if not value:
        return None
    u = urllib.parse.urlsplit(value)
    if u.scheme not in ("http", "https") or not u.hostname:
        return f"{value!r}: give an http:// or https:// URL, e.g. http://127.0.0.1:9000"
    if u.username or u.password:
        return "credentials do not belong in the endpoint URL; use credentials_file or the environment"
    try:
        u.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return f"{value!r}: bad port"
    return None


def read_credentials(file: str) -> tuple[str, str, str]:
    """(access key id, secret access key, session token or "") from a file in
    the AWS shared-credentials format (``[default]`` or its only section:
    ``aws_access_key_id``, ``aws_secret_access_key``, optional
    ``aws_session_token``).  ValueError names the file, never a value."""
    import configparser

    cp = configparser.ConfigParser(interpolation=None)
    try:
        with open(file, encoding="utf-8") as f:
            cp.read_file(f)
    except OSError as e:
        raise ValueError(f"cannot read credentials file {file}: {e.strerror}") from None
    except (configparser.Error, UnicodeDecodeError):
        raise ValueError(f"credentials file {file} is not an INI file like "
                         f"[default] aws_access_key_id = ... aws_secret_access_key = ...") from None
    sections = cp.sections()
    name = "default" if "default" in sections else sections[0] if len(sections) == 1 else None
    if name is None:
        raise ValueError(f"credentials file {file}: give a [default] section")
    s = cp[name]
    access, secret = s.get("aws_access_key_id", "").strip(), s.get("aws_secret_access_key", "").strip()
    if not access or not secret:
        raise ValueError(f"credentials file {file}: [{name}] needs aws_access_key_id and "
                         f"aws_secret_access_key")
    return access, secret, s.get("aws_session_token", "").strip()
