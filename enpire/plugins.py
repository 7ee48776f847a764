"""One registry for everything a user brings: tasks, robots, scripted policies, agents, executors,
verifiers.

A plugin is a `Plugin` value that names its parts as import paths ("module:attribute") plus the
config directories Hydra searches for its options and the JSON Schemas of its own options. The
package's own tasks are plugins of the same kind (`enpire.tasks:PLUGIN`, one folder per task), so
the shipped tasks take the path a user's do.

Where plugins come from, in this order (a later plugin may not redefine a name; that is an error
naming both):

1. the package's own (`enpire.tasks:PLUGIN`, also declared as an entry point);
2. installed distributions declaring an entry point in the group `enpire.plugins`
   (`[project.entry-points."enpire.plugins"] valve = "enpire_valve.plugin:PLUGIN"`);
3. `ENPIRE_PLUGINS=module:attribute,...` in the environment, for a plugin that is importable
   but not installed (a checkout on PYTHONPATH).

Every process that builds a world (the runner, each station worker, a Ray actor) loads the same
list the same way, so a task a plugin registers exists in the workers too. Loading a plugin imports
only the module that defines its `Plugin` value: parts are imported when first used, so reading
the registry (validation, composing a config) stays cheap.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "enpire.plugins"
ENV_VAR = "ENPIRE_PLUGINS"
BUILTIN = "enpire.tasks:PLUGIN"
ONLY_CONFIG_DIR_ENV = "ENPIRE_ONLY_CONFIG_DIR"
KINDS = ("tasks", "robots", "scripted", "agents", "executors", "verifiers")
# Schema extension points: (group, the key whose value picks the plugin's part, where its options live).
# An agent or executor kind's options sit beside `kind`; a task's or robot's under `options`.
SCHEMA_POINTS = {"agent": "kind", "executor": "kind", "task": "name", "robot": "name"}


class PluginError(RuntimeError):
    """A plugin that cannot be loaded or contradicts another; the message names the plugin and the part."""


@dataclass(frozen=True)
class Plugin:
    """What one plugin adds. Every part is an import path "module:attribute" (or "module" for a task:
    the Task subclass in it whose `name` matches)."""

    name: str
    conf_dirs: tuple[str, ...] = ()  # absolute paths of Hydra config dirs (groups task/, robot/, ...)
    tasks: Mapping[str, str] = field(default_factory=dict)  # task name -> Task subclass
    robots: Mapping[str, str] = field(default_factory=dict)  # robot name -> RobotBuilder subclass
    scripted: Mapping[str, str] = field(default_factory=dict)  # policy.name -> build(spec, params) -> Policy
    agents: Mapping[str, str] = field(default_factory=dict)  # agent.kind -> Agent class
    executors: Mapping[str, str] = field(default_factory=dict)  # executor.kind -> Executor class
    verifiers: Mapping[str, str] = field(default_factory=dict)  # done.verifier -> class (enpire.world.verifier)
    schemas: Mapping[str, str] = field(default_factory=dict)  # "agent/<kind>", "task/<name>" ... -> schema file
    capabilities: Mapping[str, str] = field(default_factory=dict)  # capability name -> what it means (docs)

    @classmethod
    def from_folders(cls, name: str, root: Path | str, package: str, **parts: Any) -> Plugin:
        """A plugin whose tasks are one folder each under `root` (package `package`): `<task>/task.py`,
        its MJCF beside it, optionally `<task>/scripted.py` (the baseline) and `<task>/conf/` (its
        task, safety, done and policy options). `parts` adds robots, agents, executors and the rest."""
        root = Path(root).resolve()
        tasks, scripted, conf = dict(parts.pop("tasks", {})), dict(parts.pop("scripted", {})), []
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
            if (folder / "task.py").is_file():
                tasks[folder.name] = f"{package}.{folder.name}.task"
            if (folder / "scripted.py").is_file():
                scripted[folder.name] = f"{package}.{folder.name}.scripted:build"
            if (folder / "conf").is_dir():
                conf.append(str(folder / "conf"))
        conf += [str(Path(d).resolve()) for d in parts.pop("conf_dirs", ())]
        return cls(name=name, conf_dirs=tuple(conf), tasks=tasks, scripted=scripted, **parts)


def _load_value(target: str, origin: str) -> Plugin:
    module, _, attr = target.partition(":")
    try:
        value = getattr(importlib.import_module(module), attr or "PLUGIN")
    except Exception as error:
        raise PluginError(f"plugin {origin} ({target}): cannot be loaded ({type(error).__name__}: {error})") from error
    value = value() if callable(value) and not isinstance(value, Plugin) else value
    if not isinstance(value, Plugin):
        raise PluginError(f"plugin {origin} ({target}): expected an enpire.plugins.Plugin, got {type(value).__name__}")
    return value


def _sources() -> list[tuple[str, str]]:
    """(origin, target) of every plugin: the package's own, entry points, then ENPIRE_PLUGINS."""
    out = [("enpire", BUILTIN)]
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.value != BUILTIN:
            out.append((f"entry point {ep.name!r}", ep.value))
    for target in filter(None, (t.strip() for t in os.environ.get(ENV_VAR, "").split(","))):
        if target not in {t for _, t in out}:
            out.append((f"{ENV_VAR} entry", target))
    return out


@functools.cache
def plugins() -> tuple[Plugin, ...]:
    """Every plugin of this process, loaded once. Two plugins defining the same part is an error."""
    found = [_load_value(target, origin) for origin, target in _sources()]
    owner: dict[tuple[str, str], str] = {}
    for plugin in found:
        for kind in (*KINDS, "schemas"):
            for key in getattr(plugin, kind):
                other = owner.setdefault((kind, key), plugin.name)
                if other != plugin.name:
                    raise PluginError(f"plugins {other!r} and {plugin.name!r} both define {kind[:-1]} {key!r}")
    return tuple(found)


def reset_cache() -> None:
    """Forget the loaded plugins (tests that install or point ENPIRE_PLUGINS at one call this)."""
    plugins.cache_clear()
    _registered.clear()


# In-process registrations (register_task / register_robot decorators): classes, not paths.
_registered: dict[str, dict[str, Any]] = {}


def register(kind: str, name: str, value: Any) -> None:
    """Register a part defined in a module already imported (e.g. a task class in a test)."""
    _registered.setdefault(kind, {})[name] = value


def names(kind: str) -> list[str]:
    """Every name of one kind ("tasks", "robots", ...) the plugins and registrations define."""
    return sorted({*(k for p in plugins() for k in getattr(p, kind)), *_registered.get(kind, {})})


def target(kind: str, name: str) -> str | None:
    """The import path a plugin gives for a part, or None."""
    return next((getattr(p, kind)[name] for p in plugins() if name in getattr(p, kind)), None)


def owner(kind: str, name: str) -> str | None:
    """The name of the plugin that defines a part (None for in-process registrations and unknowns)."""
    return next((p.name for p in plugins() if name in getattr(p, kind)), None)


def resolve(kind: str, name: str) -> Any:
    """The object a part names, imported now; KeyError when no plugin defines it."""
    if name in _registered.get(kind, {}):
        return _registered[kind][name]
    path = target(kind, name)
    if path is None:
        raise KeyError(name)
    module, _, attr = path.partition(":")
    try:
        mod = importlib.import_module(module)
    except Exception as error:
        raise PluginError(f"{kind[:-1]} {name!r} of plugin {owner(kind, name)!r}: {module} does not import "
                          f"({type(error).__name__}: {error})") from error
    if attr:
        try:
            return getattr(mod, attr)
        except AttributeError:
            raise PluginError(f"{kind[:-1]} {name!r}: module {module} has no attribute {attr!r}") from None
    return mod


def conf_dirs() -> list[Path]:
    """Config directories of every plugin, in load order (searched after the primary config dir);
    none when ENPIRE_ONLY_CONFIG_DIR=1 (a config dir that holds every option itself, e.g. a copy
    made by enpire.spec.search_path.copy_configs: `python -m enpire.validate --only-config-dir`)."""
    if os.environ.get(ONLY_CONFIG_DIR_ENV) == "1":
        return []
    return [Path(d) for p in plugins() for d in p.conf_dirs]


def schema_files() -> dict[str, Path]:
    """"<group>/<name>" -> the JSON Schema file of a plugin part's options."""
    return {key: Path(path) for p in plugins() for key, path in p.schemas.items()}


def load_schema_file(key: str, path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PluginError(f"schema {key} ({path}): not a readable JSON Schema ({error})") from error


def capabilities() -> dict[str, str]:
    out: dict[str, str] = {}
    for p in plugins():
        out.update(p.capabilities)
    return out
