"""Intake of an agent's proposal: validate it, or say exactly why it is rejected.

Checks, in order: a proposal must be a JSON object; it may not name the frozen parts of the
session (done, safety, budget, ...) anywhere; it must satisfy the session's proposal schema
(specs/proposal.schema.json narrowed to the policy's search space); its parent must be an
existing, non-rejected iteration.
"""

from __future__ import annotations

from typing import Any

from enpire.agent.proposal import proposal_problems
from enpire.agent.space import candidate_key, canonical_params
from enpire.spec.model import ExperimentSpec

FROZEN_KEYS = ("done", "safety", "budget", "envelope", "verifier")


def _frozen_paths(doc: Any, path: str = "proposal") -> list[str]:
    found = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if str(k).lower() in FROZEN_KEYS:
                found.append(f"{path}.{k}")
            found.extend(_frozen_paths(v, f"{path}.{k}"))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found.extend(_frozen_paths(v, f"{path}[{i}]"))
    return found


def rejection(proposal: Any, schema: dict[str, Any], valid_parents: dict[int, dict[str, Any]]) -> str | None:
    """None when the proposal may run, else the reason (names the key path, value and expectation)."""
    if not isinstance(proposal, dict):
        return f"proposal: got {type(proposal).__name__}; expected a JSON object"
    frozen = _frozen_paths(proposal)
    if frozen:
        return (f"{frozen[0]}: the done criteria, the safety envelope and the budget are frozen for the session; "
                "a proposal may only carry hypothesis, parent, candidate, trials and borrowed_from")
    problems = proposal_problems(proposal, schema)
    if problems:
        return "; ".join(str(p) for p in problems[:5])
    parent = proposal.get("parent")
    if parent is not None and parent not in valid_parents:
        return (f"proposal.parent: got {parent}; expected null or the index of an evaluated iteration "
                f"(known: {sorted(valid_parents)[-10:]})")
    return None


def normalise(proposal: dict[str, Any], spec: ExperimentSpec,
              valid_parents: dict[int, dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """(canonical candidate, its key): missing params come from the parent's candidate or the defaults;
    a bc recipe is completed from the policy's `train` defaults."""
    candidate = dict(proposal["candidate"])
    if candidate["kind"] == "params":
        parent = proposal.get("parent")
        base = valid_parents.get(parent, {}).get("params") if parent is not None else None
        candidate = {"kind": "params", "params": canonical_params(candidate["params"], spec.policy, base)}
    elif candidate["kind"] == "bc":  # the full recipe, so equal effective recipes pool (and reuse a checkpoint)
        from enpire.policy.recipe import resolve_recipe

        candidate = {"kind": "bc", "recipe": resolve_recipe(spec, candidate.get("recipe"))}
    elif candidate["kind"] == "rl":  # completed and bound-checked (enpire.policy.rl_recipe), so equal recipes pool
        from enpire.policy.rl_recipe import resolve_rl_recipe

        candidate = {"kind": "rl", "recipe": resolve_rl_recipe(spec, candidate.get("recipe"))}
    return candidate, candidate_key(candidate)
