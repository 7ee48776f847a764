"""The arena elements a task yaml names (`state_space.*.from`, `init.*.set`) exist: checked when the spec
loads (exit 2 naming the key), not when a station first builds the scene and every trial crashes.

The arena is the task class's MJCF (or a declarative task's `mjcf`), parsed once per file; the robot's
elements are not in it (a yaml names arena elements, and `ee` for the tool centre point).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from enpire.spec.errors import Problem

KINDS = ("site", "body", "joint", "sensor")


@functools.cache
def _names(xml: str) -> dict[str, frozenset[str]]:
    """Element names of one arena file, by kind (sensors: every sensor element's name)."""
    from dm_control import mjcf

    root = mjcf.from_path(xml)
    out = {kind: frozenset(e.name for e in root.find_all(kind) if e.name) for kind in ("site", "body", "joint")}
    sensors = root.sensor.all_children() if root.sensor is not None else []
    out["sensor"] = frozenset(e.name for e in sensors if getattr(e, "name", None))
    return out


def _arena_file(task: dict[str, Any]) -> str | None:
    """The arena MJCF of a task document: its `mjcf` (already absolute once loaded) or its class's XML."""
    if task.get("mjcf"):
        return str(task["mjcf"]) if Path(str(task["mjcf"])).is_file() else None
    from enpire import plugins
    from enpire.world.task_factory import task_class

    try:
        cls = task_class(task["name"])
    except (KeyError, plugins.PluginError):
        return None  # an unknown task is reported where the task is built
    path = cls.arena_file()
    return str(path) if path.is_file() else None


def _refs(source: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where in `from`, kind, name) of every element a quantity declaration names."""
    out = []
    for field, kind in (("joint_pos", "joint"), ("joint_vel", "joint"), ("sensor", "sensor")):
        if field in source:
            out.append((field, kind, str(source[field])))
    refs = [("position", source["position"])] if "position" in source else []
    refs += [(f"distance[{i}]", r) for i, r in enumerate(source.get("distance") or [])]
    for where, ref in refs:
        kind, _, name = str(ref).partition(":")
        if kind in ("site", "body") and name and "/" not in name:  # "enarm/link6": the robot's, not the arena's
            out.append((where, kind, name))
    return out


def element_problems(doc: dict[str, Any]) -> list[Problem]:
    """Names in a task's `from:` and `set:` declarations that its arena MJCF does not have."""
    task = doc["task"]
    declared = {q: s["from"] for q, s in (task.get("state_space") or {}).items()
                if isinstance(s, dict) and s.get("from")}
    sets = {k: r["set"] for k, r in (task.get("init") or {}).items() if isinstance(r, dict) and r.get("set")}
    if not declared and not sets:
        return []
    xml = _arena_file(task)
    if xml is None:
        return []
    try:
        names = _names(xml)
    except Exception as error:  # a broken MJCF: the scene build names it
        return [Problem("task", task.get("name"), f"a task whose arena MJCF parses ({type(error).__name__}: {error})")]
    def expected(kind: str) -> str:
        return f"a {kind} of the arena {Path(xml).name} ({', '.join(sorted(names[kind])) or 'none'})"

    out = []
    for q, source in declared.items():
        for where, kind, name in _refs(source):
            if name not in names[kind]:
                out.append(Problem(f"task.state_space.{q}.from.{where.split('[')[0]}", name, expected(kind)))
    for k, target in sets.items():
        kind = "joint" if "joint" in target else "body"
        name = str(target.get(kind))
        if name not in names[kind]:
            out.append(Problem(f"task.init.{k}.set.{kind}", name, expected(kind)))
    return out
