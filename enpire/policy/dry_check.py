"""The dry check of an agent-written policy (`screen.dry_check`, docs/twin.md): before any trial, its source is
started in the session's sandbox and must answer `reset()` and a few `act()` calls on a real observation of the
task with actions of the contract's size. A source that cannot (an import error, a missing entry point, an
exception, a wrong action, a timeout) is rejected naming why, and no robot second is spent on it.

Nothing here steps physics: the observation is one the contract shows (enpire.policy.contract.example_observation:
the simulated robot's after a verified reset), taken once per session by the caller.
"""

from __future__ import annotations

import numpy as np

from enpire.fleet.scheduler import to_candidate
from enpire.policy.code import build_code_policy
from enpire.records import Evaluation
from enpire.spec.model import ExperimentSpec


def dry_check(spec: ExperimentSpec, ev: Evaluation, obs: dict[str, np.ndarray], steps: int) -> str | None:
    """None when the candidate's code starts, resets and acts `steps` times; else what went wrong."""
    policy = build_code_policy(spec, to_candidate(ev))
    call = "reset()"
    try:
        policy.reset(obs)
        for k in range(steps):
            call = f"act() call {k + 1} of {steps}"
            policy.act(obs)
    except Exception as error:  # noqa: BLE001 - every failure is the answer, named
        text = str(error).strip().splitlines()
        return f"{call}: {type(error).__name__}: {text[-1][:300] if text else ''}".rstrip(": ")
    finally:
        policy.close()
    return None
