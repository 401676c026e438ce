"""Benchmarks that run the peer tool and ours side by side (see README)."""

import subprocess
import sys
from pathlib import Path


def compile_console() -> None:
    """Byte-compile our modules, as an installed package is (the peer tools
    are compiled too); with PYTHONDONTWRITEBYTECODE set, each run of ours
    would otherwise compile them again at start-up."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "console")],
                   check=True, stdout=subprocess.DEVNULL)
