"""Backup storage URLs, encryption keys and the encryption framing (no server)."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.config import ConfigError, parse_config
from console.engine.backup import crypto
from console.engine.backup.catalog import Catalog, Checkpoint
from console.engine.backup.crypto import CHUNK, CryptoError, CryptStorage, decrypt, encrypt
from console.engine.backup.location import open_storage
from console.engine.backup.s3 import _stale
from console.engine.backup.segments import SegmentManifest, data_key
from console.engine.backup.storage import LocalStorage
from console.engine.backup.verify import verify
from console.kinds.backup import BackupOptions
from console.kinds.storage_url import StorageURL, check_endpoint, parse, read_credentials
from console.secret import key_id, parse_key, read_key

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))


# ---- storage URLs -----------------------------------------------------------------

@pytest.mark.parametrize("value, want", [
    ("/var/backups/x", StorageURL("file", path="/var/backups/x")),
    ("relative/dir", StorageURL("file", path="relative/dir")),
    ("file:///var/backups/x", StorageURL("file", path="/var/backups/x")),
    ("file://localhost/var/b", StorageURL("file", path="/var/b")),
    ("s3://my-bucket", StorageURL("s3", bucket="my-bucket")),
    ("s3://my-bucket/", StorageURL("s3", bucket="my-bucket")),
    ("s3://my.bucket/a/b/", StorageURL("s3", bucket="my.bucket", prefix="a/b")),
    ("S3://bkt/p", StorageURL("s3", bucket="bkt", prefix="p")),
])
def test_storage_urls(value, want):
    assert parse(value) == want


@pytest.mark.parametrize("value, why", [
    ("", "empty"),
    ("ftp://host/x", "unknown scheme ftp://"),
    ("gs://bucket/x", "unknown scheme gs://"),
    ("s3://", "missing bucket"),
    ("s3:///prefix", "missing bucket"),
    ("s3://Bad_Bucket/x", "not a valid bucket name"),
    ("s3://ab/x", "not a valid bucket name"),
    ("s3://AKIA:secret@bucket/x", "credentials do not belong"),
    ("s3://bucket/a//b", "prefix may not"),
    ("s3://bucket/a/../b", "prefix may not"),
    ("s3://bucket/.hidden", "prefix may not"),
    ("s3://bucket/x?versionId=1", "no ?query"),
    ("file://host/x", "three slashes"),
    ("file:///", "needs a directory"),
])
def test_bad_storage_urls(value, why):
    with pytest.raises(ValueError, match=why.replace("?", r"\?")):
        parse(value)


def test_credentials_never_echoed_from_a_url():
    with pytest.raises(ValueError) as e:
        parse("s3://AKIAXX:topsecret@bucket/x")
    assert "topsecret" not in str(e.value)
    assert "topsecret" not in (check_endpoint("http://u:topsecret@h:9000") or "x")


def test_endpoints():
    assert check_endpoint("") is None and check_endpoint("http://127.0.0.1:9000") is None
    assert check_endpoint("https://s3.eu-west-1.amazonaws.com") is None
    assert "http" in check_endpoint("127.0.0.1:9000")
    assert "bad port" in check_endpoint("http://h:99999")


def test_credentials_file(tmp_path):
    p = tmp_path / "c"
    p.write_text("[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n")
    assert read_credentials(str(p)) == ("AK", "SK", "")
    p.write_text("[default]\naws_access_key_id = AK\n")
    with pytest.raises(ValueError, match="needs aws_access_key_id and aws_secret_access_key"):
        read_credentials(str(p))
    p.write_text("aws_secret_access_key = SUPERSECRET\n")
    with pytest.raises(ValueError) as e:
        read_credentials(str(p))
    assert "SUPERSECRET" not in str(e.value)
    with pytest.raises(ValueError, match="cannot read credentials file"):
        read_credentials(str(tmp_path / "missing"))


# ---- keys -----------------------------------------------------------------------

def test_keys_hex_and_base64(tmp_path, monkeypatch):
    import base64

    assert parse_key(KEY.hex() + "\n") == KEY
    assert parse_key(base64.b64encode(KEY).decode()) == KEY
    for bad in ("", "abc", "00" * 31, base64.b64encode(b"x" * 16).decode()):
        with pytest.raises(ValueError) as e:
            parse_key(bad)
        assert bad[:8] not in str(e.value) or not bad
    f = tmp_path / "k"
    f.write_text(KEY.hex())
    assert read_key(f) == KEY
    monkeypatch.setenv("DBOPS_TEST_KEY", KEY.hex())
    assert read_key(env="DBOPS_TEST_KEY") == KEY
    with pytest.raises(ValueError, match="DBOPS_NO_SUCH_VAR is not set"):
        read_key(env="DBOPS_NO_SUCH_VAR")
    with pytest.raises(ValueError, match="cannot read key file"):
        read_key(tmp_path / "missing")
    assert len(key_id(KEY)) == 16 and key_id(KEY) != key_id(bytes(32))
    assert KEY.hex()[:16] not in key_id(KEY)


# ---- the framing ------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 7])
def test_round_trip_and_every_cut_is_detected(n):
    data = os.urandom(n)
    blob = encrypt(KEY, "log/1.binlog.zst", data)
    assert decrypt(KEY, "log/1.binlog.zst", blob) == (data, key_id(KEY))
    cuts = {len(blob) - 1, len(blob) - 16, 30, 12}
    if n >= CHUNK:
        cuts.add(len(blob) - (n % CHUNK) - 16)      # exactly at a chunk boundary
    for cut in cuts:
        with pytest.raises(CryptoError, match="log/1.binlog.zst"):
            decrypt(KEY, "log/1.binlog.zst", blob[:cut])
    with pytest.raises(CryptoError, match="changed or truncated"):
        decrypt(KEY, "log/1.binlog.zst", blob + b"\0" * 16)


def test_changes_swaps_and_renames_are_detected():
    data = os.urandom(2 * CHUNK + 100)
    blob = bytearray(encrypt(KEY, "snapshots/a/dump.sql.zst", data))
    for pos in (9, 20, 60, len(blob) // 2, len(blob) - 1):       # header, chunks, last tag
        b = bytearray(blob)
        b[pos] ^= 0x01
        with pytest.raises(CryptoError, match="snapshots/a/dump.sql.zst"):
            decrypt(KEY, "snapshots/a/dump.sql.zst", bytes(b))
    with pytest.raises(CryptoError, match="changed or truncated"):    # another name
        decrypt(KEY, "snapshots/b/dump.sql.zst", bytes(blob))
    head = len(crypto.header(key_id(KEY), b"\0" * 32))
    c = CHUNK + 16
    swapped = blob[:head] + blob[head + c:head + 2 * c] + blob[head:head + c] + blob[head + 2 * c:]
    with pytest.raises(CryptoError):
        decrypt(KEY, "snapshots/a/dump.sql.zst", bytes(swapped))


def test_missing_or_other_key_names_the_key_id():
    blob = encrypt(KEY, "log/7.binlog.zst", b"x")
    with pytest.raises(CryptoError, match=f"key id {key_id(KEY)} and no encryption key"):
        decrypt(None, "log/7.binlog.zst", blob)
    with pytest.raises(CryptoError, match=f"configured key is {key_id(bytes(32))}"):
        decrypt(bytes(32), "log/7.binlog.zst", blob)
    assert decrypt(None, "log/7.binlog.zst", b"plain") == (b"plain", "")


def test_two_encryptions_differ_and_hold_no_plaintext():
    data = b"secret-row " * 1000
    a, b = encrypt(KEY, "k", data), encrypt(KEY, "k", data)
    assert a != b and b"secret-row" not in a and KEY not in a


def test_crypt_storage_streams_and_leaves_json_plain(tmp_path):
    st = CryptStorage(LocalStorage(tmp_path), KEY)
    data = os.urandom(3 * CHUNK + 5)
    with st.writer("snapshots/s/backup.xb.zst") as f:
        for i in range(0, len(data), 65536):
            f.write(data[i:i + 65536])
    assert (tmp_path / "snapshots/s/backup.xb.zst").read_bytes().startswith(crypto.MAGIC)
    with st.reader("snapshots/s/backup.xb.zst") as f:
        assert b"".join(iter(lambda: f.read(100_000), b"")) == data
    st.put("log/0000000001.json", b"{}")
    assert (tmp_path / "log/0000000001.json").read_bytes() == b"{}"
    st.put("log/0000000001.binlog.zst", b"zzz")
    assert st.key_id_of("log/0000000001.binlog.zst") == key_id(KEY)
    assert KEY.hex() not in repr(st) and str(KEY) not in repr(st)
    with pytest.raises(RuntimeError), st.writer("snapshots/t/x.zst") as f:   # discarded
        f.write(b"abc")
        raise RuntimeError
    assert not st.exists("snapshots/t/x.zst")
    plain = CryptStorage(LocalStorage(tmp_path))
    with pytest.raises(CryptoError, match="no encryption key is configured"), \
            plain.reader("snapshots/s/backup.xb.zst") as f:
        f.read()
    with plain.reader("log/0000000001.json") as f:
        assert f.read() == b"{}"


def test_verify_names_a_plain_object_where_the_manifest_says_encrypted(tmp_path):
    """A downgrade: an encrypted segment replaced by a plain one of the same content."""
    from console.engine.backup import zstd
    from console.engine.backup.segments import build_segment, sha256
    from tests.support import binlog_events as B

    st = CryptStorage(LocalStorage(tmp_path), KEY)
    stored = zstd.compress(build_segment(B.fde(), []))
    m = SegmentManifest(seq=1, source="h:1", source_id="1", binlog_file="b.1", start_pos=4,
                        end_pos=4, gtid_start="", gtid_end="", stored_bytes=len(stored),
                        sha256=sha256(stored), key_id=st.key_id)
    Catalog(st).publish_segment(stored, m)
    Catalog(st).save_checkpoint(Checkpoint(seq=1))
    assert verify(Catalog(st)).ok, verify(Catalog(st)).problems
    (tmp_path / data_key(1)).write_bytes(stored)
    r = verify(Catalog(st))
    assert any("segment 1" in p and data_key(1) in p and "not encrypted" in p for p in r.problems)


# ---- config: one line naming file and key, nothing created -----------------------

def _cfg(tmp_path, **task):
    return {"clusters": {"c": {"hosts": {"db1": {"user": "u", "password": "p"}}}},
            "tasks": {"b": {"kind": "backup", **task}}}


@pytest.mark.parametrize("task, key, why", [
    ({"storage": "ftp://x/y"}, "storage", "unknown scheme"),
    ({"storage": "s3:///p"}, "storage", "missing bucket"),
    ({"storage": "s3://bkt/p", "s3_endpoint": "localhost:9000"}, "s3_endpoint", "http"),
    ({"storage": "/x", "encryption_key_file": "/nonexistent/key"}, "encryption_key_file",
     "cannot read key file"),
    ({"storage": "/x", "encryption_key_env": "DBOPS_NO_SUCH_VAR"}, "encryption_key_env",
     "not set"),
    ({"storage": "/x", "encryption_key_env": "A", "encryption_key_file": "k"},
     "encryption_key_env", "only one"),
    ({"storage": "s3://bkt/p", "credentials_file": "/nonexistent/c"}, "credentials_file",
     "cannot read credentials file"),
])
def test_config_errors_name_the_key(tmp_path, task, key, why):
    f = tmp_path / "c.toml"
    with pytest.raises(ConfigError, match=f"tasks.b.{key}.*{why}"):
        parse_config(_cfg(tmp_path, **task), f)


def test_config_keeps_plain_paths_and_urls(tmp_path):
    f = tmp_path / "c.toml"
    key = tmp_path / "k"
    key.write_text(KEY.hex())
    cfg = parse_config(_cfg(tmp_path, storage="rel/dir", encryption_key_file="k"), f)
    o = cfg.tasks["b"].options
    assert o.storage == str(tmp_path / "rel/dir") and o.encryption_key_file == key
    cfg = parse_config(_cfg(tmp_path, storage="s3://bkt/a/b"), f)
    assert cfg.tasks["b"].options.storage == "s3://bkt/a/b"
    st = open_storage(BackupOptions(storage=f"file://{tmp_path}/d", encryption_key_file=key))
    assert st.key_id == key_id(KEY) and (tmp_path / "d").is_dir()


def test_cli_bad_key_file_is_one_line_exit_2_and_creates_nothing(tmp_path):
    store = tmp_path / "store"
    cfg = tmp_path / "c.toml"
    cfg.write_text('[clusters.c.hosts.db1]\nuser = "u"\npassword = "p"\n'
                   f'[tasks.b]\nkind = "backup"\nstorage = "{store}"\n'
                   f'encryption_key_file = "{tmp_path}/nokey"\n')
    r = subprocess.run([sys.executable, "-m", "console.cli", "backup", "status", "--config",
                        str(cfg), "--task", "b"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(cfg) in lines[0] and "tasks.b.encryption_key_file" in lines[0]
    assert not store.exists()


def test_a_lease_is_stale_when_expired_or_its_local_holder_is_gone():
    import time

    assert _stale({"expires": time.time() - 1}, "h")
    assert not _stale({"expires": time.time() + 30, "host": "other", "pid": 1}, "h")
    assert not _stale({"expires": time.time() + 30, "host": "h", "pid": os.getpid()}, "h")
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert _stale({"expires": time.time() + 30, "host": "h", "pid": dead.pid}, "h")


def test_decrypting_reader_reads_in_any_sizes():
    data = os.urandom(CHUNK + 3000)
    src = io.BytesIO(encrypt(KEY, "k", data))
    h = crypto.parse_header(src, "k")
    r = crypto.DecryptingReader(src, KEY, "k", *h)
    got = b"".join(iter(lambda: r.read(777), b""))
    assert got == data
