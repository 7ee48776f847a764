"""No import cycles among enpire modules: the module graph of every import (module level, inside functions and
in `if TYPE_CHECKING:` blocks: a type-only import is a dependency too) has no strongly connected component of
two or more. Shared records live in enpire.records; a module that only needs the shape of another's object
declares a Protocol instead of importing it."""

from __future__ import annotations

import ast
from pathlib import Path

import enpire

ROOT = Path(enpire.__file__).resolve().parent


def module_files() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """enpire modules `path` imports anywhere (`from pkg import submodule` counts as the submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            found.update(subs)
            if len(subs) < len(node.names) and node.module in known:
                found.add(node.module)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_type_only_imports_count(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from enpire.loop import Session\n"
                      "def f():\n    import enpire.records\n")
    assert imports(module, {"enpire.loop", "enpire.records"}) == {"enpire.loop", "enpire.records"}


def test_no_import_cycles_among_enpire_modules() -> None:
    files = module_files()
    known = set(files)
    graph = {name: imports(path, known) - {name} for name, path in files.items()}
    assert len(graph) > 100
    assert cycles(graph) == []


def test_records_import_no_enpire_module() -> None:
    """enpire.records is the neutral module every package reads: it depends on none of them."""
    files = module_files()
    assert imports(files["enpire.records"], set(files)) == set()


def test_world_imports_neither_operator_control_nor_policy() -> None:
    """Stations read the estop flag through enpire.world.estop; the operator's channel and commands (enpire.ops)
    are the runner's side. A station runs whatever Policy it is handed (the protocol is enpire.world.api's);
    which policy a candidate means is enpire.policy's, wired in by enpire.fleet.stations."""
    files = module_files()
    known = set(files)
    banned = ("enpire.ops", "enpire.ctl", "enpire.policy")
    reach = {name: sorted(m for m in imports(path, known) if m.startswith(banned))
             for name, path in files.items() if name.startswith("enpire.world")}
    assert {name: found for name, found in reach.items() if found} == {}
