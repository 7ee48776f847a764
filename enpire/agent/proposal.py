"""A session's proposal schema: specs/proposal.schema.json with the policy's search space.

The JSON file stays the one source of the proposal's shape; this only narrows
`candidate.params` to the parameter names and ranges the policy config declares, and
restricts the candidate kinds to what the policy family accepts. The result is also the
input schema of the Claude agent's tool.
"""

from __future__ import annotations

import copy
from typing import Any

from enpire.spec.errors import Problem
from enpire.spec.model import PolicySpec
from enpire.spec.schemas import load_schema, problems_with, validator_for_schema

KIND_FOR_POLICY = {"scripted": "params", "code": "code", "bc": "bc", "rl": "rl"}


def proposal_schema(policy: PolicySpec) -> dict[str, Any]:
    schema = copy.deepcopy(load_schema("proposal"))
    schema.pop("$id", None)
    allowed = KIND_FOR_POLICY[policy.kind]
    branches = schema["properties"]["candidate"]["oneOf"]
    keep = [b for b in branches if b["properties"]["kind"]["const"] == allowed]
    for branch in keep:
        if allowed == "params":
            branch["properties"]["params"] = {
                "type": "object",
                "additionalProperties": False,
                "description": "Values for the policy's tunable parameters; omitted ones keep the parent's value.",
                "properties": {
                    p.name: {"type": "number", "minimum": p.low, "maximum": p.high,
                             "description": f"{p.description} [{p.unit}] (default {p.default})".strip()}
                    for p in policy.params
                },
            }
        if allowed == "rl":  # the policy's bounds: an out-of-bounds recipe is rejected with its key path
            from enpire.policy.rl_recipe import narrow_schema

            narrow_schema(branch, dict(policy.train))
    schema["properties"]["candidate"] = keep[0] if len(keep) == 1 else {"oneOf": keep}
    return schema


def max_trials() -> int:
    """The most trials one proposal may ask for (specs/proposal.schema.json, `trials.maximum`)."""
    return int(load_schema("proposal")["properties"]["trials"]["maximum"])


def proposal_problems(doc: Any, schema: dict[str, Any]) -> list[Problem]:
    """Every problem of an agent's proposal; key paths are relative to the proposal."""
    return problems_with(validator_for_schema(schema), doc, prefix="proposal")
