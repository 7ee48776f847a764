"""The station interface: what the fleet and agents may ask of a robot cell.

A station owns one MuJoCo world (or, later, a real robot) with its controller, safety
envelope and frozen verifier. Callers hand it a TrialRequest and get a TrialRecord back;
they never touch the physics, the envelope or the verifier. The records themselves (TrialRequest,
TrialRecord, SafetyEvent) live in enpire.records: every package reads them.

Trial protocol: verified reset (retried; `faulty_after` failed resets mark the station
faulty) -> up to `done.episode.attempts` attempts, each at most `done.episode.time_limit_s`
of robot time, each judged by the verifier; a retry continues from the state the failed
attempt left and the policy is told of that failure (pass@k). A safety breach stops the
robot, ends the trial as `unsafe` (no retry) and the next trial begins with a reset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from enpire.records import TrialRecord, TrialRequest

# -- what a station runs: the policy protocol (every policy family implements it; enpire.policy.api) --------
Observation = dict[str, np.ndarray]

CARTESIAN_ACTION = ("x", "y", "z", "yaw", "grip")


@dataclass(frozen=True)
class AttemptFeedback:
    """What a policy is told before a retry."""

    attempt: int  # the attempt about to start (2..k)
    reason: str  # the verifier's reason the previous attempt failed
    quantities: dict[str, float] = field(default_factory=dict)


class Policy(Protocol):
    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None: ...

    def act(self, obs: Observation) -> np.ndarray: ...



class Station(Protocol):
    """One robot cell. Implementations: enpire.world.station.SimStation (MuJoCo)."""

    index: int

    @property
    def faulty(self) -> bool: ...

    def run_trial(self, request: TrialRequest) -> TrialRecord: ...

    @property
    def reset_problems(self) -> list[str]:
        """What the last failed reset found wrong."""
        ...

    def recheck_reset(self, seed: int) -> bool:
        """Verify a reset after a person fixed the scene; True returns a reset-faulty station to service."""
        ...

    def close(self) -> None: ...
