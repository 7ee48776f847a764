"""The attempts of one trial: policy -> controller -> envelope -> physics, judged by the verifier.

pass@k: up to done.attempts attempts; a retry continues from the state the failed attempt
left and the policy's reset() is told why it failed. A breach ends the trial as `unsafe` at
once; an exception from the policy ends it as `crash` (the station stays usable).

An attempt also ends before done.time_limit_s when the task says it cannot succeed any more:
`Task.should_terminate` (the task's own test, e.g. the cube fell off the table) or the task's
declared `early_stop` rule (`EarlyStop`: the policy's action has not changed for a while, the
whole scene is at rest and the task's quantities are far from success). Either way the verifier
judges the attempt as usual, on the state it ended in; the rule is built so that it can only
fire while the done predicate is false, so an early end is never a success.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import mujoco
import numpy as np

from enpire.records import TrialRecord
from enpire.world.api import AttemptFeedback, Policy
from enpire.world.estop import estop_stop
from enpire.world.recording import TrajectoryRecorder, VideoRecorder
from enpire.world.replay import ReplayRecorder
from enpire.world.task import Task

if TYPE_CHECKING:
    from enpire.records import SafetyEvent
    from enpire.spec.model import ExperimentSpec
    from enpire.world.task import TaskPhysics
    from enpire.world.verifier import Verifier

log = logging.getLogger(__name__)


def _excludes(a: tuple[bool, float], b: tuple[bool, float]) -> bool:
    """True when no value satisfies both `x >= v` / `x <= v` conditions a and b, each (at_least, value)."""
    (a_ge, av), (b_ge, bv) = a, b
    if a_ge == b_ge:
        return False
    low, high = (av, bv) if a_ge else (bv, av)  # x >= low and x <= high
    return low > high


class EarlyStop:
    """A task's declared rule for ending an attempt that cannot succeed any more
    (`conf/task/<name>.yaml: early_stop`, specs/task.schema.json):

    - the policy's action stayed within `action_tol` (every entry) of one value for `idle_s`,
    - every joint of the scene (robot, gripper and objects) has been slower than `rest_speed`
      for the last `rest_s`, and
    - every one of `conditions` holds on the task's quantities; at least one of them must
      contradict a condition of the done predicate (checked at build), so the rule can only fire
      while the attempt is not succeeding.

    A policy that has finished its script and a scene at rest stay as they are, so an attempt in
    that state runs out its time limit as the failure it already is. Independent of the verifier:
    it reads the task's quantities and the policy's actions, never the verifier's state.
    """

    def __init__(self, rule: Mapping[str, Any], dt: float, physics: TaskPhysics, data: mujoco.MjData) -> None:
        self.idle_s, self.rest_s = float(rule["idle_s"]), float(rule["rest_s"])
        self._idle_steps = max(1, math.ceil(self.idle_s / dt - 1e-9))
        self._rest_steps = max(1, math.ceil(self.rest_s / dt - 1e-9))
        self._watch = max(0, self._idle_steps - self._rest_steps)  # idle steps after which the rest is watched
        self._speed = float(rule["rest_speed"])
        self._tol = float(rule["action_tol"])
        self.conditions = tuple((str(c["quantity"]), c["op"] == ">=", float(c["value"])) for c in rule["conditions"])
        self._quantity = physics.quantity
        self._qvel = data.qvel
        self.begin()

    @classmethod
    def from_spec(cls, spec: ExperimentSpec, physics: TaskPhysics, data: mujoco.MjData) -> EarlyStop | None:
        """The task's rule, or None when it declares none (or one that does not exclude success)."""
        rule = spec.resolved["task"].get("early_stop")
        if not rule:
            return None
        unknown = [c["quantity"] for c in rule["conditions"] if c["quantity"] not in spec.task.state_space]
        if unknown:
            raise ValueError(f"task.early_stop.conditions: {unknown} are not quantities of task.state_space")
        stop = cls(rule, spec.control_dt, physics, data)
        done = [(c.quantity, c.op == ">=", float(c.value)) for c in spec.done.conditions]
        if not any(q == dq and _excludes((ge, v), (dge, dv)) for q, ge, v in stop.conditions for dq, dge, dv in done):
            log.warning("task.early_stop ignored: none of its conditions contradicts the done predicate, so it "
                        "could end an attempt that is succeeding")
            return None
        return stop

    def begin(self) -> None:
        """A new attempt: nothing has been idle yet."""
        self._anchor: list[float] | None = None
        self._idle = 0
        self._rest = 0

    def __call__(self, action: np.ndarray) -> bool:
        """After each control step, with the action just applied: True when the attempt should end now."""
        a, anchor = action.tolist(), self._anchor
        if a != anchor and (anchor is None or self._moved(a, anchor)):
            self._anchor, self._idle, self._rest = a, 0, 0
            return False
        self._idle += 1
        if self._idle <= self._watch:
            return False
        if max(map(abs, self._qvel.tolist())) >= self._speed:
            self._rest = 0
            return False
        self._rest += 1
        if self._idle < self._idle_steps or self._rest < self._rest_steps:
            return False
        read = self._quantity
        return all((read(q) >= v) if ge else (read(q) <= v) for q, ge, v in self.conditions)

    def _moved(self, a: list[float], anchor: list[float]) -> bool:
        """Some entry of `a` is more than action_tol away from the anchor's (a moving policy: mostly the first)."""
        tol, ntol = self._tol, -self._tol
        for x, y in zip(a, anchor):
            if not ntol <= x - y <= tol:  # NaN counts as moved
                return True
        return len(a) != len(anchor)


class Drivable(Protocol):
    """What run_attempts drives: enpire.world.station.SimStation (a protocol, so this module does not import
    the station that imports it)."""

    spec: ExperimentSpec
    scene: Any  # enpire.world.scene.Scene: task, physics, data
    _verifier: Verifier
    _dt: float

    @property
    def action_size(self) -> int: ...

    def observe(self) -> dict[str, np.ndarray]: ...

    def step(self, action: np.ndarray, step: int) -> tuple[int, SafetyEvent | None]: ...

    def feedback(self, attempt: int, reason: str, quantities: dict[str, float]) -> AttemptFeedback: ...


def end_dry_run(st: Drivable, rec: TrialRecord, event: SafetyEvent | None) -> None:
    """A dry-run trial (station.dry_run): no command left the station, so the robot's state says nothing about
    the policy. It ends `estopped` (no evidence: enpire.judge.pools.NO_EVIDENCE, never a success) after its
    first attempt, with the envelope's finding kept; the verifier is asked only to re-check its integrity."""
    st._verifier.verdict(safety_stopped=True)  # raises IntegrityError if the judged files moved
    rec.success_attempt, rec.pass_at_1, rec.pass_at_k = None, False, False
    rec.outcome = "estopped"
    rec.reason = (f"dry run (station.dry_run=true): no command left the station; {getattr(st, 'withheld', rec.steps)}"
                  f" commands computed and withheld, {rec.clamps} joint clamps")
    if event is not None:
        rec.safety_events.append(event)
        rec.reason += (f"; the envelope would have stopped the robot at control step {event.step}: "
                       f"{event.kind} value={event.value} limit={event.limit}")


def note_shadow(ver: Any, rec: TrialRecord, attempt: int) -> None:
    """A verifier with a shadow (enpire.detector.verifier in simulation): what the state verifier said of the
    attempt just judged, kept in rec.shadow (never shown to an agent, never the verdict)."""
    shadow = getattr(ver, "shadow_verdict", None)
    if shadow is None:
        return
    s = rec.shadow or {"verifier": "predicate", "pass_at_1": False, "pass_at_k": False, "success_attempt": None}
    if shadow.success and s["success_attempt"] is None:
        s.update(success_attempt=attempt, pass_at_k=True, pass_at_1=attempt == 1)
    rec.shadow = s


def run_attempts(st: Drivable, policy: Policy, rec: TrialRecord, video: VideoRecorder | ReplayRecorder | None,
                 traj: TrajectoryRecorder | None) -> None:
    spec, task, physics, ver = st.spec, st.scene.task, st.scene.physics, st._verifier
    dt, shape = st._dt, (st.action_size,)
    limit_steps = math.ceil(spec.done.time_limit_s / dt - 1e-9)
    # The per-control-step loop: bound methods hoisted, nothing allocated but the action and observation.
    step_fn, observe, act, shaping, judge, hopeless = (st.step, st.observe, policy.act, task.shaping_reward,
                                                       ver.step, task.should_terminate)
    early = getattr(st, "_early_stop", None)
    if getattr(hopeless, "__func__", None) is Task.should_terminate:
        hopeless = None  # the task keeps the default (never hopeless): no call per step
    data = st.scene.data
    feedback = None
    step = 0
    # operator estop: a 1-byte shared flag read before every control step; `checked` = wall time just before
    # the last read, so an estop record can prove the flag was still unset one step before the stop.
    estop, clock = getattr(st, "_estop", b"\0"), time.time
    dry_run = bool(getattr(st, "dry_run", False))  # station.dry_run: nothing was sent, so nothing is evidence
    if dry_run:
        st.withheld = 0  # type: ignore[attr-defined]  # commands this trial withholds (SimStation._dry_step)
    # the adapter's own stop, after the envelope's (estop): never in a dry run, a failing stop only logged
    robot_stop = getattr(st, "_adapter_stop", None)
    attribute = getattr(ver, "attribution", None)  # per-attempt failure attribution (a plugin verifier may lack it)
    started_at = checked = clock()
    for attempt in range(1, spec.done.attempts + 1):
        rec.attempts = attempt
        ver.begin_attempt()
        if early is not None:
            early.begin()
        event, stopped_early = None, False
        # the record's counters live in locals during the loop and are written back however it ends
        clamps, robot_s, shaping_return = rec.clamps, rec.robot_seconds, rec.shaping_return
        try:
            obs = observe()
            policy.reset(obs, feedback)
            for _ in range(limit_steps):
                previous, checked = checked, clock()
                if estop[0]:  # ~0.1 us with the clock: the robot stops within one control step of the estop
                    event = estop_stop(st, step, started_at, previous)
                    if robot_stop is not None:
                        robot_stop()
                    break
                if traj is not None:  # recording (record.trajectories): the observation as the policy gets it
                    traj.observation(obs)
                action = np.asarray(act(obs), dtype=float).ravel()
                if action.shape != shape:
                    raise ValueError(f"policy action: got shape {action.shape}; expected {shape}")
                n_clamped, event = step_fn(action, step)
                clamps += n_clamped
                step += 1
                robot_s += dt
                if traj is not None:
                    traj.step(data, action, n_clamped, event is not None, attempt)
                if video is not None:
                    video.maybe_capture(data, step)
                if event is not None:
                    break
                reward = shaping(physics)
                shaping_return += reward
                if traj is not None:
                    traj.reward(reward)
                if judge(dt) or (hopeless is not None and hopeless(physics)):
                    break
                if early is not None and early(action):
                    stopped_early = True
                    break
                obs = observe()
        except Exception:
            rec.outcome, rec.error = "crash", traceback.format_exc()
            rec.reason = "policy raised"
            return
        finally:
            rec.clamps, rec.robot_seconds, rec.shaping_return, rec.steps = clamps, robot_s, shaping_return, step
            if attribute is not None:  # once per attempt, however it ended
                rec.attribution.append(attribute(attempt, event is not None and event.kind != "estop"))
        if event is not None and event.kind == "estop":
            rec.safety_events.append(event)
            rec.outcome, rec.reason = "estopped", (  # the operator's, or the robot's own (RobotStopped 'estop')
                f"robot stopped itself at control step {event.step} ({event.detail[7:]})"
                if event.detail.startswith("robot: ") else f"operator estop at control step {event.step}")
            return
        if dry_run:
            end_dry_run(st, rec, event)
            return
        if event is not None:
            rec.safety_events.append(event)
            rec.outcome, rec.reason = "unsafe", f"safety stop: {event.kind} value={event.value} limit={event.limit}"
            ver.verdict(safety_stopped=True)  # integrity is re-checked even here
            note_shadow(ver, rec, attempt)
            return
        verdict = ver.verdict(safety_stopped=False)
        note_shadow(ver, rec, attempt)
        rec.reason = verdict.reason
        if stopped_early:
            rec.reason += (f"; attempt {attempt} ended early: action unchanged for {early.idle_s:g} s with the "
                           f"scene at rest")
        if verdict.success:
            rec.success_attempt = attempt
            rec.pass_at_k = True
            rec.pass_at_1 = attempt == 1
            rec.outcome = "success" if attempt == 1 else "failure"
            return
        feedback = st.feedback(attempt + 1, verdict.reason, verdict.quantities)
    rec.outcome = "failure"
