"""Records that cross packages: what a station is asked and answers, an iteration being evaluated, and
an iteration as everyone reads it once closed.

They live here, in a module that imports no other enpire module, so that world, fleet, agent, judge,
track and the loop can all hand them to each other without importing each other (no import cycles;
data flows one way). Protocols (the station, the agent, session observers) stay with the package that
implements them; only plain data is here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["success", "failure", "unsafe", "crash", "reset_failed", "estopped"]
OUTCOMES: tuple[str, ...] = ("success", "failure", "unsafe", "crash", "reset_failed", "estopped")
DECISIONS = ("keep", "discard", "crash", "unsafe", "rejected", "cancelled")


# ---- a trial: request (fleet -> station) and record (station -> everyone) ----------------------
@dataclass(frozen=True)
class SafetyEvent:
    """One envelope breach: kind, control step, observed value and the limit it crossed."""

    kind: str  # joint_position, joint_velocity, workspace, contact_force, nonfinite_state, nonfinite_command,
    # applied_command (a robot applied more than the envelope allows), estop
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
    record_video: bool = False  # render an mp4 during the trial (enpire.report.render)
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
    # per attempt, the verifier's failure attribution (enpire.world.verifier.Verifier.attribution): each
    # condition's value, threshold, signed margin and longest hold, and the phase the attempt reached
    attribution: list[dict[str, Any]] = field(default_factory=list)
    # done.verifier=classifier in simulation: what the state verifier said of the same attempts (never shown to
    # an agent): {"verifier": "predicate", "pass_at_1", "pass_at_k", "success_attempt"}; None otherwise
    shadow: dict[str, Any] | None = None

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


# ---- an iteration: open (loop, fleet, track) and closed (agents, track, report) ---------------
@dataclass
class Evaluation:
    """An accepted proposal being evaluated (an open iteration)."""

    index: int
    agent: str
    branch: str
    parent: int | None
    hypothesis: str
    candidate: dict[str, Any]
    key: str
    trials_wanted: int
    borrowed_from: str | None = None
    tokens: int = 0
    dispatched: int = 0
    records: list[TrialRecord] = field(default_factory=list)
    pooled: int = 0  # of `records`, how many are in the tree's pool (strict pools at close, fast on arrival)
    started: float = 0.0
    closed_as: tuple[str, str] | None = None  # (decision, reason) fixed before any trial, e.g. training failed
    transcript: list[dict[str, Any]] = field(default_factory=list)  # the agent call that proposed it
    twin: dict[str, Any] | None = None  # screen.twin=sim: the twin's figures for its candidate (passed or not)
    screening: bool = False  # held by the screen (a dry check, the twin: enpire.fleet.screen) until its verdict
    twin_records: list[TrialRecord] = field(default_factory=list)  # the twin's trials of a screened-out candidate

    @property
    def complete(self) -> bool:
        return len(self.records) >= self.dispatched

    @property
    def ready(self) -> bool:
        """May its trials be dispatched? A bc candidate first needs a checkpoint (enpire.fleet.trainer_slot), a
        screened one its verdict (enpire.fleet.screen)."""
        return self.closed_as is None and not self.screening and (
            self.candidate.get("kind") != "bc" or bool(self.candidate.get("checkpoint")))


@dataclass(frozen=True)
class IterationSummary:
    """One finished iteration as agents see it."""

    index: int
    agent: str
    branch: str
    parent: int | None
    hypothesis: str
    candidate: dict[str, Any]  # {"kind": "params", "params": {...}} | {"kind": "code", ...} | {"kind": "bc", ...}
    candidate_id: str
    decision: str  # one of DECISIONS
    success_rate: float
    pass_at_1: float
    pass_at_k: float
    trials: int
    safety_stops: int
    robot_seconds: float
    tokens: int
    borrowed_from: str | None = None
    reason: str = ""  # why rejected / crashed / kept or discarded
    failures: tuple[dict[str, Any], ...] = ()  # a few failed trials: outcome, reason, final_state, safety_events
    candidate_trials: int = 0  # all trials so far of this candidate (re-evaluations pooled)
    candidate_success_rate: float = 0.0
    # the failed trials grouped by why (enpire.attribution.failure_histogram): label, count, typical value
    failure_histogram: tuple[dict[str, Any], ...] = ()
    # screen.twin=sim: what the digital twin found before robot time (trials, successes, success_rate,
    # sim_seconds, passed); a candidate it screened out is `rejected` with these and its twin failures
    twin: dict[str, Any] | None = None
