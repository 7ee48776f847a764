"""Scripted reach baseline: slide a target point to the goal at a set speed, correcting for tracking error.

The impedance controller leaves a steady-state error (gravity model, posture spring); the
`error_gain` parameter feeds back the observed end-effector error (an integral term).
Parameters (conf/policy/reach_scripted.yaml): speed, error_gain, yaw.
"""

from __future__ import annotations

import numpy as np

from enpire.policy.api import AttemptFeedback, Observation
from enpire.policy.scripted.common import MovingTarget
from enpire.spec.model import ExperimentSpec


class ReachPolicy:
    def __init__(self, params: dict[str, float], dt: float) -> None:
        self.p = params
        self.dt = dt

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        self.target = MovingTarget(obs["ee_pos"], self.dt)
        self.offset = np.zeros(3)

    def act(self, obs: Observation) -> np.ndarray:
        goal = np.asarray(obs["target_pos"], dtype=float)
        pos = self.target.toward(goal, self.p["speed"])
        if self.target.arrived(goal):
            self.offset += self.p["error_gain"] * self.dt * (goal - np.asarray(obs["ee_pos"]))
            self.offset = np.clip(self.offset, -0.05, 0.05)
        cmd = pos + self.offset
        return np.array([cmd[0], cmd[1], cmd[2], self.p["yaw"], 0.0])


def build(spec: ExperimentSpec, params: dict[str, float]) -> ReachPolicy:
    return ReachPolicy(params, spec.control_dt)
