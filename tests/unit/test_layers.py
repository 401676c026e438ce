"""Layers without cycles (issue 13): each module of console/ imports only its
own layer or the layers below, and no import cycle exists anywhere.

    core    console.errors, console.secret, console.options, console.children
    mysql   console.mysql.*            (speaks to servers; decides nothing)
    config  console.config, console.kinds.*   (what the operator declared)
    engine  console.engine.*           (tasks; never Textual, never the sandbox)
    top     console.cli, console.commands.*, console.tui.*, console.sandbox*, ...

Imports inside functions count too: a lazy import is still a dependency.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "console"

LAYERS = ["core", "mysql", "config", "engine", "top"]
CORE = {"console", "console.errors", "console.secret", "console.options", "console.children"}


def layer(mod: str) -> str:
    if mod in CORE:
        return "core"
    for prefix, name in (("console.mysql", "mysql"), ("console.config", "config"),
                         ("console.kinds", "config"), ("console.engine", "engine")):
        if mod == prefix or mod.startswith(prefix + "."):
            return name
    return "top"


def modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(ROOT).with_suffix("")
        out[".".join(rel.parts).removesuffix(".__init__")] = f
    return out


def imports(name: str, f: Path, known: dict[str, Path]) -> set[str]:
    pkg = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
    deps = set()
    for node in ast.walk(ast.parse(f.read_text(), str(f))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                m = f"{base}.{node.module}" if node.module else base
            else:
                m = node.module or ""
            targets = [f"{m}.{a.name}" if f"{m}.{a.name}" in known else m for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in known and t != name:
                deps.add(t)
    return deps


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, f, known) for name, f in known.items()}


def test_every_import_goes_down_the_layers():
    wrong = []
    for mod, deps in graph().items():
        mine = LAYERS.index(layer(mod))
        for d in deps:
            if LAYERS.index(layer(d)) > mine:
                wrong.append(f"{mod} ({layer(mod)}) imports {d} ({layer(d)})")
    assert wrong == []


def test_the_engine_imports_neither_the_sandbox_nor_the_console():
    bad = [f"{m} imports {d}" for m, deps in graph().items() if layer(m) == "engine"
           for d in deps if d.startswith(("console.sandbox", "console.tui", "console.commands"))]
    assert bad == []


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_anywhere():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
