"""The built wheel ships what the README promises: the entry point, the
version and the theme CSS (a console without its layout is what a wheel
without console/themes gave).  Builds the wheel, installs it in a fresh venv
(dependencies from the package index), and compares a headless screenshot
taken by the installed copy with one taken by this checkout."""

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCREENSHOT = r'''
import sys, tempfile
from pathlib import Path
import console.tui.app as appmod
from console.tui.app import ConsoleApp
sys.path.insert(0, sys.argv[2])
from tests.tui.fixed import fixed_engine

async def main():
    app = ConsoleApp(fixed_engine(Path(tempfile.mkdtemp())), start_monitors=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.5)
        Path(sys.argv[1]).write_text(app.export_screenshot())
    print(Path(appmod.__file__).parent.parent)

import asyncio
asyncio.run(main())
'''


def _normalised(svg: str) -> str:
    # Textual names the SVG's CSS classes after a hash of the whole export;
    # the drawing is what must be the same
    return re.sub(r"terminal-\d+", "terminal", svg)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(d), str(ROOT)], check=True)
    wheel = next(d.glob("dbops_console-*.whl"))
    env_dir = d / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                   check=True)
    return wheel, env_dir


def test_the_wheel_holds_the_themes(installed):
    import zipfile

    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for css in ("base", "dark", "light", "solarized"):
        assert f"console/themes/{css}.tcss" in names


def test_installed_command_says_its_version(installed):
    from console import __version__

    _, env_dir = installed
    r = subprocess.run([str(env_dir / "bin" / "dbops-console"), "--version"],
                       capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"dbops-console {__version__}"


def test_installed_console_draws_what_the_checkout_draws(installed, tmp_path):
    _, env_dir = installed
    # the installed copy runs outside the checkout (cwd /, no PYTHONPATH), so
    # `console` comes from site-packages; the test feed module from here
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ours, theirs = tmp_path / "checkout.svg", tmp_path / "wheel.svg"
    r = subprocess.run([str(env_dir / "bin" / "python"), "-c", SCREENSHOT, str(theirs), str(ROOT)],
                       capture_output=True, text=True, cwd="/", env=env)
    assert r.returncode == 0, r.stderr
    assert str(env_dir) in r.stdout, f"console was imported from {r.stdout}"
    r = subprocess.run([sys.executable, "-c", SCREENSHOT, str(ours), str(ROOT)],
                       capture_output=True, text=True, cwd="/", env=env)
    assert r.returncode == 0, r.stderr
    # the layout of base.tcss is drawn: the topology pane's round border
    assert "╭" in theirs.read_text()
    assert _normalised(theirs.read_text()) == _normalised(ours.read_text())
