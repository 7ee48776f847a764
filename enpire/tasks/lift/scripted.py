"""Scripted lift baseline: hover over the cube, descend, close, lift, hold.

Planned once per attempt from the observed cube pose (a retry re-plans from wherever the cube
lies); phases advance when the moving set-point arrives and a dwell has passed, so the
compliant arm's tracking lag (about a centimetre) is part of what the parameters must absorb.
The tunable parameters are the ones a person would fiddle with on a real arm: how far the
jaws turn to match the cube's heading (`yaw_align`), how deep the tool centre goes relative to
the cube centre (`grasp_depth`), how long to wait for the jaws to close, how fast and how high
to lift, and `servo_gain`, an integral correction of the arm's steady tracking error (the
default 0 trusts the controller, which sags about a centimetre, so the jaws close too high).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from enpire.policy.scripted.common import action, clip, norm
from enpire.world.api import AttemptFeedback, Observation

PARAMS = ("grasp_depth", "yaw_align", "close_time", "lift_speed", "lift_height", "servo_gain")
APPROACH_HEIGHT = 0.06  # m, hover point above the cube top
TRAVEL_SPEED = 0.3  # m/s
SERVO_LIMIT = 0.03  # m, largest correction per axis
YAW_RATE = 1.0  # rad/s: a jump in the heading command would spin the wrist past the envelope's speed limit
CUBE_HALF = 0.025  # m, = enpire.tasks.lift.task.CUBE_HALF


@dataclass
class Segment:
    """Move the setpoint toward `goal` at `speed`, holding `grip`; then wait `dwell` s."""

    goal: np.ndarray
    speed: float
    grip: float
    dwell: float = 0.0


class LiftPolicy:
    def __init__(self, params: Mapping[str, float], control_dt: float) -> None:
        self.p = {k: float(params[k]) for k in PARAMS}
        self.dt = control_dt
        self._segments: list[Segment] = []
        self._setpoint = np.zeros(3)
        self._yaw = 0.0
        self._waited = 0.0

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        """Plan from the current cube pose; a retry simply re-plans from wherever the cube lies."""
        self._setpoint = np.asarray(obs["ee_pos"], dtype=float).copy()
        cube = np.asarray(obs["cube_pos"], dtype=float)
        self._yaw = self.p["yaw_align"] * float(obs["cube_yaw"][0])
        p = self.p
        hover = np.array([cube[0], cube[1], cube[2] + CUBE_HALF + APPROACH_HEIGHT])
        grasp = np.array([cube[0], cube[1], cube[2] + p["grasp_depth"]])
        up = np.array([cube[0], cube[1], p["lift_height"]])
        self._segments = [
            Segment(np.array([*self._setpoint[:2], max(self._setpoint[2], hover[2])]), TRAVEL_SPEED, 0.0),
            Segment(hover, TRAVEL_SPEED, 0.0, dwell=0.2),
            Segment(grasp, TRAVEL_SPEED / 2, 0.0, dwell=0.2),
            Segment(grasp, TRAVEL_SPEED, 1.0, dwell=p["close_time"]),
            Segment(up, p["lift_speed"], 1.0, dwell=1e9),
        ]
        self._waited = 0.0
        self._bias = np.zeros(3)
        self._yaw_cmd = float(obs["ee_yaw"][0])

    def act(self, obs: Observation) -> np.ndarray:
        seg = self._segments[0]
        ee = np.asarray(obs["ee_pos"], dtype=float)
        step = seg.goal - self._setpoint
        n = norm(step)
        move = seg.speed * self.dt
        self._setpoint = seg.goal.copy() if n <= move else self._setpoint + step / n * move
        if n <= move:  # the setpoint arrived (the arm lags it; the dwell lets it catch up)
            self._waited += self.dt
            if self._waited >= seg.dwell and len(self._segments) > 1:
                self._segments.pop(0)
                self._waited = 0.0
        self._bias = clip(self._bias + self.p["servo_gain"] * self.dt * (self._setpoint - ee),
                             -SERVO_LIMIT, SERVO_LIMIT)
        self._yaw_cmd += min(max(self._yaw - self._yaw_cmd, -YAW_RATE * self.dt), YAW_RATE * self.dt)
        return action(self._setpoint + self._bias, self._yaw_cmd, seg.grip)


def build(spec, params: Mapping[str, float]) -> LiftPolicy:  # noqa: ANN001  (ExperimentSpec)
    return LiftPolicy(params, spec.control_dt)
