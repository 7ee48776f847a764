"""The station interface: what the fleet and agents may ask of a robot cell.

A station owns one MuJoCo world (or, later, a real robot) with its controller, safety
envelope and frozen verifier. Callers hand it a TrialRequest and get a TrialRecord back;
they never touch the physics, the envelope or the verifier.

Trial protocol: verified reset (retried; `faulty_after` failed resets mark the station
faulty) -> up to `done.episode.attempts` attempts, each at most `done.episode.time_limit_s`
of robot time, each judged by the verifier; a retry continues from the state the failed
attempt left and the policy is told of that failure (pass@k). A safety breach stops the
robot, ends the trial as `unsafe` (no retry) and the next trial begins with a reset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Outcome = Literal["success", "failure", "unsafe", "crash", "reset_failed", "estopped"]
OUTCOMES: tuple[str, ...] = ("success", "failure", "unsafe", "crash", "reset_failed", "estopped")


@dataclass(frozen=True)
class SafetyEvent:
    """One envelope breach: kind, control step, observed value and the limit it crossed."""

    kind: str  # joint_position, joint_velocity, workspace, contact_force, nonfinite_state, nonfinite_command, estop
    step: int
    value: float | None
    limit: float | None
    detail: str = ""


@dataclass(frozen=True)
class Candidate:
    """What a station executes: parameters of the scripted policy, source code, or a checkpoint."""

    candidate_id: str
    kind: Literal["params", "code", "bc"] = "params"
    params: dict[str, float] = field(default_factory=dict)
    source: str | None = None  # kind=code: Python source of the policy
    checkpoint: str | None = None  # kind=bc: path of a trained checkpoint readable by the station


@dataclass(frozen=True)
class TrialRequest:
    trial_id: str
    iteration: int
    seed: int
    candidate: Candidate
    record_video: bool = False  # render an mp4 during the trial (enpire.world.render)
    record_replay: bool = False  # keep positions at the video frame rate; rendered later if shown (replay.py)
    record_trajectory: bool = False
    out_dir: str = "outputs/trials"  # where videos and trajectories of this trial go


@dataclass
class TrialRecord:
    """One trial, as logged (specs/trial.schema.json)."""

    trial_id: str
    iteration: int
    station: int
    seed: int
    outcome: Outcome
    attempts: int
    success_attempt: int | None
    pass_at_1: bool
    pass_at_k: bool
    robot_seconds: float
    wall_s: float
    steps: int
    clamps: int
    safety_events: list[SafetyEvent] = field(default_factory=list)
    final_state: dict[str, float | None] = field(default_factory=dict)
    reason: str = ""  # the verifier's words on the last attempt, or the crash/reset message
    shaping_return: float = 0.0
    video: str | None = None
    trajectory: str | None = None
    error: str | None = None
    replay: str | None = None  # local file of enpire.world.replay; not part of the logged record

    @property
    def success(self) -> bool:
        return self.pass_at_1

    def to_dict(self) -> dict[str, Any]:
        """JSON form matching specs/trial.schema.json."""
        d = asdict(self)
        d["return"] = d.pop("shaping_return")
        d.pop("reason")
        d.pop("replay")
        d["error"] = self.error if self.error is not None else (self.reason or None)
        return d


class Station(Protocol):
    """One robot cell. Implementations: enpire.world.station.SimStation (MuJoCo)."""

    index: int

    @property
    def faulty(self) -> bool: ...

    def run_trial(self, request: TrialRequest) -> TrialRecord: ...

    def close(self) -> None: ...
