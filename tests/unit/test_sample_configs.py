"""The sample configs parse (password sources faked where they point at
files or variables that only exist on a real installation)."""

from pathlib import Path

import pytest

from console.config import parse_config

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "sample-configs").glob("*.toml"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_config_parses(path, tmp_path, monkeypatch):
    data = tomllib.loads(path.read_text())
    pw = tmp_path / "pw"
    pw.write_text("x\n")

    def fake_sources(t):
        if isinstance(t, dict):
            if "password_file" in t:
                t["password_file"] = str(pw)
            if "password_env" in t:
                monkeypatch.setenv(t["password_env"], "x")
            for v in t.values():
                fake_sources(v)

    fake_sources(data)
    cfg = parse_config(data, tmp_path / path.name)
    assert cfg.clusters
