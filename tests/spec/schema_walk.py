"""Walk a JSON Schema of specs/ beside a document it accepts, listing the places a mutation can go.

The fuzz tests take their rules from the schema files themselves (required keys, closed
objects, types, bounds), so a constraint added to a schema is fuzzed without editing a test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from enpire import SPECS_DIR


@dataclass(frozen=True)
class Site:
    """A node of a valid document and the effective schema that governs it."""

    path: tuple[str | int, ...]
    schema: dict[str, Any]
    value: Any


def load(name: str) -> dict[str, Any]:
    return json.loads((SPECS_DIR / f"{name}.schema.json").read_text())


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Follow $ref (within a file, or to another file of specs/) to (schema, its root)."""
    while "$ref" in schema:
        ref = schema["$ref"]
        file, _, pointer = ref.partition("#")
        if file:
            root = load(file.removesuffix(".schema.json"))
        node: Any = root
        for part in [p for p in pointer.split("/") if p]:
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, root


def effective(schema: dict[str, Any], root: dict[str, Any], value: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema after $ref and the if/then branches that apply to `value`, merged."""
    schema, root = _resolve(schema, root)
    for part in schema.get("allOf", []):
        cond = part.get("if")
        if cond is not None and Draft202012Validator(cond).is_valid(value) and "then" in part:
            branch, root = effective(part["then"], root, value)
            schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **branch,
                      "properties": {**schema.get("properties", {}), **branch.get("properties", {})},
                      "required": sorted({*schema.get("required", []), *branch.get("required", [])})}
    return schema, root


def sites(schema: dict[str, Any], value: Any, root: dict[str, Any] | None = None,
          path: tuple[str | int, ...] = ()) -> Iterator[Site]:
    """Every node of `value` with its effective schema, depth first."""
    root = root if root is not None else schema
    schema, root = effective(schema, root, value)
    yield Site(path, schema, value)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from sites(sub, child, root, (*path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, child in enumerate(value):
            yield from sites(schema["items"], child, root, (*path, i))


def types_of(schema: dict[str, Any]) -> set[str]:
    t = schema.get("type")
    return {t} if isinstance(t, str) else set(t or ())


def key_path(path: tuple[str | int, ...]) -> str:
    """The key path as enpire's errors write it: a.b[0].c"""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def set_at(doc: Any, path: tuple[str | int, ...], value: Any) -> None:
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def delete_at(doc: Any, path: tuple[str | int, ...]) -> None:
    node = doc
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
