"""Load the JSON Schemas of specs/ and validate documents against them.

The schemas are the single source of truth for types, ranges and allowed keys; Python code
never repeats those rules. Non-finite numbers are rejected here because JSON cannot hold them.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from enpire import SPECS_DIR
from enpire.spec.errors import MISSING, Problem
from enpire.spec.plugin_schemas import extend, plugin_schema_resources

GROUPS = ("task", "robot", "safety", "done", "budget", "agent", "policy", "executor", "tracking", "dynamics")


@cache
def _registry(specs_dir: Path = SPECS_DIR) -> Registry:
    """Every schema of specs/ (as plugins extend it: enpire.spec.plugin_schemas) and every plugin's own."""
    resources = []
    for path in sorted(specs_dir.glob("*.schema.json")):
        contents = extend(path.name.removesuffix(".schema.json"), json.loads(path.read_text()))
        resource = Resource.from_contents(contents)
        resources.append((contents["$id"], resource))
        resources.append((path.name, resource))
    resources += [(uri, Resource.from_contents(contents)) for uri, contents in plugin_schema_resources()]
    return Registry().with_resources(resources)


@cache
def load_schema(name: str, specs_dir: Path = SPECS_DIR) -> dict[str, Any]:
    """The schema `specs/<name>.schema.json` as a dict."""
    path = specs_dir / f"{name}.schema.json"
    if not path.exists():
        raise FileNotFoundError(f"no schema named {name!r} in {specs_dir}")
    return json.loads(path.read_text())


@cache
def _validator(name: str, specs_dir: Path = SPECS_DIR) -> Draft202012Validator:
    schema = extend(name, load_schema(name, specs_dir))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(
        schema, registry=_registry(specs_dir), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def validator_for_schema(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema built at run time (e.g. a session's proposal schema)."""
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _join(prefix: str, parts: Any) -> str:
    path = prefix
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _leaf_errors(error: ValidationError) -> list[ValidationError]:
    """For combinators (oneOf/anyOf/if-then), report the most specific sub-errors."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        # The branch that got furthest is the one the author meant.
        best = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.message)))
        branch = [e for e in error.context if e.relative_schema_path[0] == best.relative_schema_path[0]]
        return [leaf for e in branch for leaf in _leaf_errors(e)]
    return [error]


def _describe(error: ValidationError) -> tuple[str, Any, str]:
    """(extra path, value, expected) for one jsonschema error."""
    v, sch = error.validator, error.validator_value
    if v == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        key = unknown[0] if unknown else ""
        exp = f"no such key (allowed: {', '.join(allowed)})" if allowed else "no such key"
        return key, error.instance.get(key) if key else error.instance, exp
    if len(error.relative_schema_path) > 1 and error.relative_schema_path[-2] == "propertyNames":
        return str(error.instance), error.instance, f"a key name matching {sch}" if v == "pattern" else error.message
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(sch)
        return missing, MISSING, "a required key"
    desc = error.schema.get("description") if isinstance(error.schema, dict) else None
    expected = {
        "type": f"type {sch}",
        "enum": f"one of {sch}",
        "const": f"exactly {sch!r}",
        "minimum": f">= {sch}",
        "maximum": f"<= {sch}",
        "exclusiveMinimum": f"> {sch}",
        "exclusiveMaximum": f"< {sch}",
        "minItems": f"at least {sch} items",
        "maxItems": f"at most {sch} items",
        "minLength": f"at least {sch} characters",
        "maxLength": f"at most {sch} characters",
        "pattern": f"a string matching {sch}",
        "uniqueItems": "unique items",
        "minProperties": f"at least {sch} entries",
        "format": f"format {sch}",
    }.get(v, error.message)
    if desc and v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "type", "enum"):
        expected = f"{expected} ({desc})"
    return "", error.instance, expected


def nonfinite_problems(doc: Any, prefix: str = "") -> list[Problem]:
    """NaN and infinities anywhere in a document (JSON has neither)."""
    out: list[Problem] = []
    if isinstance(doc, float) and not math.isfinite(doc):
        out.append(Problem(prefix, doc, "a finite number"))
    elif isinstance(doc, dict):
        for k, v in doc.items():
            out += nonfinite_problems(v, _join(prefix, [k]))
    elif isinstance(doc, list | tuple):
        for i, v in enumerate(doc):
            out += nonfinite_problems(v, _join(prefix, [i]))
    return out


def problems_with(validator: Draft202012Validator, doc: Any, prefix: str = "") -> list[Problem]:
    problems = nonfinite_problems(doc, prefix)
    seen = {p.path for p in problems}
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        for leaf in _leaf_errors(error):
            extra, value, expected = _describe(leaf)
            path = _join(prefix, [*leaf.absolute_path, *([extra] if extra else [])])
            if path in seen and value is not MISSING:
                continue  # a NaN already reported; the schema's complaint about it adds nothing
            seen.add(path)
            problems.append(Problem(path, value, expected))
    return problems


def validate(doc: Any, schema: str, prefix: str = "", specs_dir: Path = SPECS_DIR) -> list[Problem]:
    """Every problem of `doc` against `specs/<schema>.schema.json`, paths prefixed with `prefix`."""
    return problems_with(_validator(schema, specs_dir), doc, prefix)
