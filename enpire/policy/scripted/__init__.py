"""Scripted (parametric) baseline policies, one module per task: enpire/policy/scripted/<task>.py.

Each module exposes `build(spec, params) -> Policy`; `params` are the policy group's
defaults (`conf/policy/<task>_scripted.yaml: params`) overridden by the candidate's.
Unknown parameter names are an error (they would silently do nothing).
"""

from __future__ import annotations

from importlib import import_module

from enpire.policy.api import Policy
from enpire.spec.model import ExperimentSpec
from enpire.world.api import Candidate


def resolve_params(spec: ExperimentSpec, candidate: Candidate) -> dict[str, float]:
    params = spec.policy.defaults()
    unknown = sorted(set(candidate.params) - set(params))
    if unknown:
        raise ValueError(f"candidate.params: got {unknown}; expected names among {sorted(params)}")
    params.update({k: float(v) for k, v in candidate.params.items()})
    return params


def build_scripted_policy(spec: ExperimentSpec, candidate: Candidate) -> Policy:
    """The task's scripted policy with the candidate's parameters."""
    name = spec.policy.name
    try:
        module = import_module(f"enpire.policy.scripted.{name}")
    except ModuleNotFoundError as e:
        raise ValueError(f"policy.name: no scripted policy module enpire.policy.scripted.{name}") from e
    return module.build(spec, resolve_params(spec, candidate))
