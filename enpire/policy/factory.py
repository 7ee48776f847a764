"""Build the policy a station runs for a candidate. One entry point for every policy family."""

from __future__ import annotations

from importlib import import_module

from enpire.records import Candidate
from enpire.spec.model import ExperimentSpec
from enpire.world.api import Policy

# candidate kind -> "module:function(spec, candidate) -> Policy"
BUILDERS = {
    "params": "enpire.policy.scripted:build_scripted_policy",
    "bc": "enpire.policy.bc:build_bc_policy",
    "code": "enpire.policy.code:build_code_policy",
    "rl": "enpire.policy.rl:build_rl_policy",
}


def make_policy(spec: ExperimentSpec, candidate: Candidate) -> Policy:
    try:
        target = BUILDERS[candidate.kind]
    except KeyError:
        raise ValueError(f"candidate.kind: got {candidate.kind!r}; expected one of {sorted(BUILDERS)}") from None
    module, _, func = target.partition(":")
    return getattr(import_module(module), func)(spec, candidate)
