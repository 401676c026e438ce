"""Helpers shared by subcommands: loading the config, printing JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from console.config import DEFAULT_STATE_DIR, Config, find_config, load_config


def config_from_args(args) -> Config:
    return load_config(find_config(getattr(args, "config", None)))


def default_state_dir(args) -> Path:
    """The configured state dir when a config is given, else the default."""
    try:
        return config_from_args(args).state_dir
    except Exception:  # noqa: BLE001 - no config is fine here
        return Path(DEFAULT_STATE_DIR).expanduser()


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
