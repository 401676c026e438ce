"""Rule 1 of the house: the engine (and the MySQL layer) never import Textual."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "console"
NO_TEXTUAL = ["engine", "mysql"]


def test_engine_sources_never_import_textual():
    offenders = []
    for sub in NO_TEXTUAL:
        for f in (ROOT / sub).rglob("*.py"):
            tree = ast.parse(f.read_text(), str(f))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n == "textual" or n.startswith("textual.") or n.startswith("console.tui") for n in names):
                    offenders.append(f"{f}:{node.lineno}")
    assert offenders == []


def _engine_modules() -> list[str]:
    mods = []
    for sub in NO_TEXTUAL:
        for f in (ROOT / sub).rglob("*.py"):
            rel = f.relative_to(ROOT.parent).with_suffix("")
            mods.append(".".join(rel.parts).removesuffix(".__init__"))
    return mods


def _import_engine_and_check(banned: str):
    """Import every engine and MySQL module in a fresh interpreter; it exits 1
    if a module whose name matches ``banned`` (a Python expression on ``m``) got loaded."""
    code = ("import importlib, sys\n"
            f"for m in {_engine_modules()!r}: importlib.import_module(m)\n"
            f"bad = [m for m in sys.modules if {banned}]\n"
            "print(bad)\nsys.exit(1 if bad else 0)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_importing_every_engine_module_loads_no_textual():
    r = _import_engine_and_check("m == 'textual' or m.startswith('textual.')")
    assert r.returncode == 0, r.stdout + r.stderr


def _imports(f: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``f``, relative ones resolved."""
    tree = ast.parse(f.read_text(), str(f))
    pkg = ".".join(f.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def test_engine_never_imports_the_sandbox_or_the_tui():
    """Layers: the engine (and the MySQL layer under it) never import the demo
    sandbox or the TUI, not even lazily inside a function."""
    banned = ("console.sandbox", "console.sandbox_config", "console.tui")
    offenders = []
    for sub in NO_TEXTUAL:
        for f in (ROOT / sub).rglob("*.py"):
            for line, mod in _imports(f):
                if any(mod == b or mod.startswith(b + ".") for b in banned):
                    offenders.append(f"{f.relative_to(ROOT.parent)}:{line} imports {mod}")
    assert offenders == []


def test_importing_every_engine_module_loads_no_sandbox():
    r = _import_engine_and_check("m.startswith(('console.sandbox', 'console.tui'))")
    assert r.returncode == 0, r.stdout + r.stderr
