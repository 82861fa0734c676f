"""The layout holds: imports point one way onto a leaf of shared types.

Every ``import`` of the package counts, those under ``TYPE_CHECKING`` and those
inside functions included (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "enrich"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(package modules, top-level third-party names) imported by one module."""
    tree = ast.parse(path.read_text("utf-8"))
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rpartition(".")[0]
    ours: set[str] = set()
    foreign: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.split(".")[0] == "enrich" else foreign).add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                target = ".".join([*up, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "enrich":
                foreign.add(target)
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                ours.add(sub if sub in known else target)
    ours = {m for m in ours if m in known and m != name}
    return ours, {f.split(".")[0] for f in foreign}


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    mods = modules()
    known = set(mods)
    ours: dict[str, set[str]] = {}
    foreign: dict[str, set[str]] = {}
    for name, path in mods.items():
        ours[name], foreign[name] = imports_of(name, path, known)
    return ours, foreign


def closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(edges.get(m, ()))
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_not_even_under_type_checking() -> None:
    ours, _ = graph()
    assert cycles(ours) == []


def test_the_leaf_of_shared_types_imports_nothing_of_the_package() -> None:
    ours, _ = graph()
    assert ours["enrich.types"] == set()


def test_imports_point_one_way_down_the_layers() -> None:
    # each layer may import the layers after it, never one before it
    layers = [
        {"enrich.cli"},
        {"enrich.checking", "enrich.presentation"},
        {"enrich.runner"},
        {"enrich.fanout", "enrich.report"},
        {"enrich.prepare"},
        {"enrich.cache", "enrich.client", "enrich.limiter", "enrich.retry", "enrich.frames",
         "enrich.phones"},
        {"enrich.types"},
    ]  # fmt: skip
    ours, _ = graph()
    rank = {m: i for i, layer in enumerate(layers) for m in layer}
    upward = [
        (m, dep)
        for m, deps in ours.items()
        for dep in deps
        if m in rank and dep in rank and rank[dep] < rank[m]
    ]
    assert upward == []


def test_nothing_below_the_cli_imports_click() -> None:
    _, foreign = graph()
    users = sorted(
        m for m, names in foreign.items()
        if "click" in names and m not in ("enrich.cli", "enrich.emulator.command")
    )  # fmt: skip
    assert users == []


def test_enrich_check_reaches_neither_aiohttp_nor_the_client() -> None:
    ours, foreign = graph()
    reach = closure("enrich.checking", ours)
    assert "enrich.client" not in reach
    assert not [m for m in reach if "aiohttp" in foreign[m]]


def test_enrich_check_loads_no_aiohttp_when_it_runs(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("phone\n+8613800138000\n", "utf-8")
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from enrich.cli import cli\n"
        f"res = CliRunner().invoke(cli, ['check', {str(data)!r}, '--cust-space-id', 'c1'])\n"
        "assert res.exit_code == 0, res.output\n"
        "print(sorted(m for m in ('aiohttp', 'enrich.client', 'enrich.runner') "
        "if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
