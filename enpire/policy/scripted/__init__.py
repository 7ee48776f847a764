"""Scripted (parametric) baseline policies: one `build(spec, params) -> Policy` per task, beside
the task (`enpire/tasks/<task>/scripted.py`, or a plugin's), found through enpire.plugins by
`policy.name`. `params` are the policy option's defaults (`conf/policy/<task>_scripted.yaml:
params`) overridden by the candidate's. Unknown parameter names are an error (they would
silently do nothing). Helpers every baseline may use: enpire.policy.scripted.common.
"""

from __future__ import annotations

from enpire import plugins
from enpire.records import Candidate
from enpire.spec.model import ExperimentSpec
from enpire.world.api import Policy


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
        build = plugins.resolve("scripted", name)
    except KeyError:
        raise ValueError(f"policy.name: got {name!r}; expected a task with a scripted baseline "
                         f"({', '.join(plugins.names('scripted'))})") from None
    return build(spec, resolve_params(spec, candidate))
