"""The shipped JSON Schemas extended by what plugins add (enpire.plugins).

- agent and executor kinds a plugin defines join `kind`'s enum; a kind with a schema of its
  own options (`schemas: {"agent/<kind>": path}`) is checked against it when chosen, and its
  option keys are refused under any other kind. A plugin agent must bring a schema (the loop
  reads `trials_per_candidate` and `reevaluate_trials` of every agent).
- a task or robot a plugin defines may bring a schema of its `options` (`"task/<name>"`,
  `"robot/<name>"`), checked when that task or robot is chosen.

Errors then carry the same key paths as the shipped options' (`agent.points: got 1; expected >= 2`).
"""

from __future__ import annotations

import copy
from typing import Any

from enpire import plugins

PLUGIN_SCHEMA_BASE = "https://enpire.dev/plugins/"


def plugin_schema_resources() -> list[tuple[str, dict[str, Any]]]:
    """(uri, schema) of every plugin schema file, each under its own $id (or a made-up one)."""
    out = []
    for key, path in sorted(plugins.schema_files().items()):
        contents = plugins.load_schema_file(key, path)
        out.append((_uri(key, contents), contents))
    return out


def _uri(key: str, contents: dict[str, Any]) -> str:
    return str(contents.get("$id") or f"{PLUGIN_SCHEMA_BASE}{key}.schema.json")


def _known_keys(schema: dict[str, Any]) -> set[str]:
    """Every option key the shipped schema of a group names (at the top or in a kind's $defs)."""
    keys = set(schema.get("properties") or {})
    for sub in (schema.get("$defs") or {}).values():
        keys |= set(sub.get("properties") or {}) if isinstance(sub, dict) else set()
    return keys


def _kind_branch(kind: str, schema: dict[str, Any] | None, key: str, known: set[str] | None) -> dict[str, Any]:
    """Chosen: the plugin's schema. Not chosen: the keys only this kind has (not in `known`) are refused;
    `known` None when the other kinds' own schemas refuse unknown keys already."""
    when = {"properties": {"kind": {"const": kind}}, "required": ["kind"]}
    if schema is None:
        return {"if": when, "then": True}
    branch: dict[str, Any] = {"if": when, "then": {"$ref": _uri(key, schema)}}
    own = sorted(set(schema.get("properties") or {}) - known) if known is not None else []
    if own:
        branch["else"] = {"properties": {k: False for k in own}}
    return branch


def extend(group: str, base: dict[str, Any]) -> dict[str, Any]:
    """`base` (the shipped schema of `group`) with every plugin's kinds, names and option schemas."""
    files = plugins.schema_files()
    if group in ("agent", "executor"):
        kinds = [k for k in plugins.names(f"{group}s") if k not in base["properties"]["kind"]["enum"]]
        if not kinds:
            return base
        out = copy.deepcopy(base)
        # A schema closed at the top (executor) admits a plugin kind's keys there, so the other kinds must refuse
        # them in an else-branch; one whose kinds close themselves ($defs, agent) needs none.
        closed_top = out.get("additionalProperties") is False
        known = _known_keys(base) if closed_top else None
        out["properties"]["kind"]["enum"] += kinds
        branches = out.setdefault("allOf", [])
        for kind in kinds:
            key = f"{group}/{kind}"
            schema = plugins.load_schema_file(key, files[key]) if key in files else None
            if schema is None and group == "agent":
                raise plugins.PluginError(f"agent kind {kind!r} of plugin {plugins.owner('agents', kind)!r} has no "
                                          f"schema of its options (Plugin.schemas['{key}'])")
            if schema is not None and closed_top:
                for name in schema.get("properties") or {}:
                    out["properties"].setdefault(name, True)  # the kind's branch says what it may be
            branches.append(_kind_branch(kind, schema, key, known))
        return out
    if group in ("task", "robot"):
        keys = sorted(k for k in files if k.startswith(f"{group}/"))
        if not keys:
            return base
        out = copy.deepcopy(base)
        for key in keys:
            name = key.split("/", 1)[1]
            schema = plugins.load_schema_file(key, files[key])
            out.setdefault("allOf", []).append({
                "if": {"properties": {"name": {"const": name}}, "required": ["name"]},
                "then": {"properties": {"options": {"$ref": _uri(key, schema)}}},
            })
        return out
    return base
