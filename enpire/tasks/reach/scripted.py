"""Scripted reach baseline: slide a target point to the goal at a set speed, correcting for tracking error.

The impedance controller leaves a steady-state error (gravity model, posture spring); the
`error_gain` parameter feeds back the observed end-effector error (an integral term).
Parameters (conf/policy/reach_scripted.yaml): speed, error_gain, yaw.
"""

from __future__ import annotations

import numpy as np

from enpire.policy.scripted.common import MovingTarget, action, clip
from enpire.spec.model import ExperimentSpec
from enpire.world.api import AttemptFeedback, Observation


class ReachPolicy:
    def __init__(self, params: dict[str, float], dt: float) -> None:
        self.p = params
        self.dt = dt

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        self.target = MovingTarget(obs["ee_pos"], self.dt)
        self.offset = np.zeros(3)

    def act(self, obs: Observation) -> np.ndarray:
        goal = obs["target_pos"]
        pos = self.target.toward(goal, self.p["speed"])
        if self.target.arrived(goal):
            self.offset += self.p["error_gain"] * self.dt * (goal - obs["ee_pos"])
            self.offset = clip(self.offset, -0.05, 0.05)
        return action(pos + self.offset, self.p["yaw"], 0.0)


def build(spec: ExperimentSpec, params: dict[str, float]) -> ReachPolicy:
    return ReachPolicy(params, spec.control_dt)
