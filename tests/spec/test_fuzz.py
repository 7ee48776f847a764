"""Property-based fuzzing of specs/*.schema.json.

Valid documents come from the shipped configs (composed through Hydra), for the two schemas
that describe run-time messages from one hand-made sample each, and for the two that describe
config files as written (config, overlay) from those files. Mutations are derived
from the schema files: drop a required key, add a key to a closed object, put a value of a
type the schema does not allow, push a number past its bound, break a pattern, or put NaN or
an infinity where a number goes. Every mutant must be rejected with problems (never an
exception) naming the mutated key path; valid variations must round-trip through the frozen
spec unchanged.
"""

from __future__ import annotations

import copy
import json
import math
import re
from functools import cache
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enpire import CONFIG_DIR, SPECS_DIR
from enpire.spec import SpecError, load_spec
from enpire.spec.load import check_document, spec_from_config
from enpire.spec.schemas import GROUPS, validate
from tests.spec.schema_walk import Site, delete_at, key_path, load, set_at, sites, types_of

COMBOS = (
    ["task=drawer"],
    ["task=reach", "robot=jaco", "agent=claude", "executor=inline", "policy=bc", "budget=smoke"],
    ["task=push_t", "agent=random", "policy=code", "fleet=3", "agents=2"],
    ["task=lift", "agent=tpe", "budget=large"],
    ["task=peg_insert", "experiment=debug"],
)
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "proposal": [{"hypothesis": "a faster pull finishes before the time limit", "parent": None,
                  "candidate": {"kind": "params", "params": {"pull_speed": 0.3}}}],
    "trial": [{"trial_id": "t-1", "iteration": 0, "station": 0, "seed": 7, "outcome": "unsafe", "attempts": 1,
               "success_attempt": None, "pass_at_1": False, "pass_at_k": False, "robot_seconds": 1.5,
               "wall_s": 2.0, "steps": 75, "clamps": 3,
               "safety_events": [{"kind": "workspace", "step": 40, "value": 0.8, "limit": 0.72, "detail": "x"}],
               "final_state": {"drawer_opening": 0.01}}],
    "station_protocol": [{"type": "heartbeat", "owner": "runner@host:123", "seq": 4, "trial_id": "i0001-t000"}],
    # the config files as written (before composition): the root config and the experiment overlays
    "config": [yaml.safe_load((CONFIG_DIR / "config.yaml").read_text())],
    "overlay": [yaml.safe_load(p.read_text()) for p in sorted((CONFIG_DIR / "experiment").glob("*.yaml"))],
}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def documents() -> tuple[tuple[str, str], ...]:
    """(schema name, JSON text of a valid document): one per group per combo, and the samples."""
    out = []
    for overrides in COMBOS:
        doc = load_spec(list(overrides)).as_dict()
        out.append(("experiment", json.dumps(doc)))
        out += [(group, json.dumps(doc[group])) for group in GROUPS]
    out += [(name, json.dumps(doc)) for name, docs in SAMPLES.items() for doc in docs]
    return tuple(dict.fromkeys(out))


def test_every_schema_has_valid_documents() -> None:
    names = {p.name.removesuffix(".schema.json") for p in SPECS_DIR.glob("*.schema.json")}
    assert names == {name for name, _ in documents()}
    for name, text in documents():
        assert validate(json.loads(text), name) == [], f"{name}: {text[:200]}"


# --- mutations ---------------------------------------------------------------------------------

_JSON_VALUES = {
    "string": st.text(max_size=8),
    "boolean": st.booleans(),
    "null": st.none(),
    "array": st.lists(st.integers(), max_size=2),
    "object": st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2),
    "integer": st.integers(-10**6, 10**6),
    "number": st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not float(x).is_integer()),
}


def _wrong_type(site: Site) -> st.SearchStrategy[Any] | None:
    allowed = types_of(site.schema)
    if not allowed:
        return None
    if "number" in allowed:
        allowed |= {"integer"}
    wrong = [t for t in _JSON_VALUES if t not in allowed]
    return st.one_of(*(_JSON_VALUES[t] for t in wrong)) if wrong else None


def _past_bound(site: Site) -> st.SearchStrategy[Any] | None:
    s, integral = site.schema, "number" not in types_of(site.schema)
    gap = st.integers(1, 10**6) if integral else st.floats(1e-6, 1e6)
    options = []
    if "minimum" in s:
        options.append(gap.map(lambda d, m=s["minimum"]: m - d))
    if "maximum" in s:
        options.append(gap.map(lambda d, m=s["maximum"]: m + d))
    if "exclusiveMinimum" in s:
        options.append(st.just(s["exclusiveMinimum"]))
    if "exclusiveMaximum" in s:
        options.append(st.just(s["exclusiveMaximum"]))
    return st.one_of(*options) if options else None


def _bad_string(site: Site) -> st.SearchStrategy[Any] | None:
    s, options = site.schema, []
    if "pattern" in s:
        options.append(st.text(max_size=12).filter(lambda x, p=s["pattern"]: not re.search(p, x)))
    if s.get("minLength", 0) > 0:
        options.append(st.just(""))
    if "enum" in s:
        options.append(st.text(max_size=12).filter(lambda x, e=s["enum"]: x not in e))
    if "const" in s:
        options.append(st.text(max_size=12).filter(lambda x, c=s["const"]: x != c))
    return st.one_of(*options) if options else None


@st.composite
def mutants(draw: st.DrawFn) -> tuple[str, Any, str, str]:
    """(schema name, mutated document, key path that must be named, what was done)."""
    # The station protocol is a oneOf of message types (the walk below follows properties, not oneOf branches);
    # its malformed messages are refused in tests/station/test_station_server.py.
    name, text = draw(st.sampled_from([d for d in documents() if d[0] != "station_protocol"]))
    doc = json.loads(text)
    choices: list[tuple[str, Site]] = []
    for site in sites(load(name), doc):
        if isinstance(site.value, dict):
            choices += [("drop", site)] * bool(set(site.schema.get("required", ())) & set(site.value))
            choices += [("unknown", site)] * (site.schema.get("additionalProperties") is False)
            choices += [("badname", site)] * ("pattern" in site.schema.get("propertyNames", {}))
        if isinstance(site.value, list) and site.schema.get("minItems", 0) > 0:
            choices.append(("short", site))
        if isinstance(site.value, int | float) and not isinstance(site.value, bool):
            choices.append(("nonfinite", site))
            if _past_bound(site) is not None:
                choices.append(("bound", site))
        if isinstance(site.value, str) and _bad_string(site) is not None:
            choices.append(("string", site))
        if site.path and _wrong_type(site) is not None:
            choices.append(("type", site))
    kind, site = draw(st.sampled_from(choices))
    path = site.path
    if kind == "drop":
        key = draw(st.sampled_from(sorted(set(site.schema["required"]) & set(site.value))))
        delete_at(doc, (*path, key)) if path else doc.pop(key)
        path = (*path, key)
    elif kind in ("unknown", "badname"):
        if kind == "unknown":
            key = draw(st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z").filter(lambda k: k not in site.schema["properties"]))
        else:
            pattern = site.schema["propertyNames"]["pattern"]
            key = draw(st.text(min_size=1, max_size=8).filter(lambda k: not re.search(pattern, k)))
        node = doc
        for part in path:
            node = node[part]
        node[key] = copy.deepcopy(next(iter(site.value.values()), 0)) if kind == "badname" else draw(st.integers())
        path = (*path, key)
    elif kind == "short":
        set_at(doc, path, site.value[: site.schema["minItems"] - 1])
    elif kind == "nonfinite":
        set_at(doc, path, draw(st.sampled_from([math.nan, math.inf, -math.inf])))
    elif kind == "bound":
        set_at(doc, path, draw(_past_bound(site)))  # type: ignore[arg-type]
    elif kind == "string":
        set_at(doc, path, draw(_bad_string(site)))  # type: ignore[arg-type]
    else:
        set_at(doc, path, draw(_wrong_type(site)))  # type: ignore[arg-type]
    return name, doc, key_path(path), kind


@SETTINGS
@given(mutants())
def test_mutants_are_rejected_naming_the_key(case: tuple[str, Any, str, str]) -> None:
    name, doc, path, kind = case
    problems = validate(doc, name)
    assert problems, f"{kind} at {path} was accepted"
    named = [p.path for p in problems]
    assert path in named, f"{kind} at {path}: problems name {named}"
    for p in problems:
        assert str(p).startswith(p.path or "<root>")
    if name == "experiment":  # the whole pipeline: schema and cross-group checks, never a crash
        with pytest.raises(SpecError) as error:
            check_document(doc)
        assert path in [p.path for p in error.value.problems]


# --- valid variations round-trip ------------------------------------------------------------------

@st.composite
def in_range(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped experiment document with one bounded number redrawn inside its bounds."""
    texts = [t for n, t in documents() if n == "experiment"]
    doc = json.loads(draw(st.sampled_from(texts)))
    numeric = [s for s in sites(load("experiment"), doc) if isinstance(s.value, int | float)
               and not isinstance(s.value, bool) and s.path and (
                   {"minimum", "exclusiveMinimum"} & set(s.schema) and {"maximum", "exclusiveMaximum"} & set(s.schema))]
    site = draw(st.sampled_from(numeric))
    lo = site.schema.get("minimum", site.schema.get("exclusiveMinimum"))
    hi = site.schema.get("maximum", site.schema.get("exclusiveMaximum"))
    if "number" in types_of(site.schema):
        value = draw(st.floats(lo, hi, exclude_min="exclusiveMinimum" in site.schema,
                               exclude_max="exclusiveMaximum" in site.schema))
    else:
        value = draw(st.integers(lo + ("exclusiveMinimum" in site.schema), hi - ("exclusiveMaximum" in site.schema)))
    set_at(doc, site.path, value)
    return doc


def test_valid_documents_round_trip() -> None:
    accepted = []

    @SETTINGS
    @given(in_range())
    def check(doc: dict[str, Any]) -> None:
        assert validate(doc, "experiment") == []
        try:
            spec = spec_from_config(copy.deepcopy(doc))
        except SpecError as error:  # a cross-group check may still object; it must say where
            assert error.problems and all(p.path for p in error.problems)
            return
        accepted.append(spec.fingerprints.spec_sha256)
        assert spec.as_dict() == doc
        assert json.loads(json.dumps(spec.as_dict(), allow_nan=False)) == doc
        assert spec_from_config(spec.as_dict()).fingerprints == spec.fingerprints

    check()
    assert len(set(accepted)) > 10, "almost no valid variation was accepted: the fuzzing proves nothing"
