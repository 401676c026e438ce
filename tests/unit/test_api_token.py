"""The API token file: made once, 0600, never replaced, refused when others can read it."""

import os
import stat

import pytest

from console.api.token import bearer_ok, ensure_token, read_token, token_path, value_ok
from console.errors import UserError


def test_made_once_0600_and_kept(tmp_path):
    t = ensure_token(tmp_path)
    assert len(t) >= 40
    assert stat.S_IMODE(token_path(tmp_path).stat().st_mode) == 0o600
    assert ensure_token(tmp_path) == t
    assert read_token(tmp_path) == t
    assert [p.name for p in tmp_path.iterdir()] == ["api.token"]  # no temp file left


def test_readable_by_others_is_refused_in_one_line(tmp_path):
    ensure_token(tmp_path)
    os.chmod(token_path(tmp_path), 0o644)
    with pytest.raises(UserError, match="readable by others.*chmod 600"):
        read_token(tmp_path)


def test_missing_token_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_token(tmp_path)


def test_header_and_value_checks(tmp_path):
    t = ensure_token(tmp_path)
    assert bearer_ok(f"Bearer {t}", t)
    assert not bearer_ok(f"Bearer {t}x", t)
    assert not bearer_ok(t, t)
    assert not bearer_ok(None, t)
    assert not bearer_ok("Bearer ", t)
    assert value_ok(t, t) and not value_ok("", t) and not value_ok(None, t)
