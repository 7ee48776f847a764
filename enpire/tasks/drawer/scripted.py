"""Scripted drawer baseline: above the handle, down onto it, close, pull along the slide axis.

Phases follow the state (arrival of a moving target), not the clock. Parameters (see
conf/policy/drawer_scripted.yaml): approach_height, grasp_depth, grasp_height, pull_distance,
pull_speed, grip_close.
"""

from __future__ import annotations

import numpy as np

from enpire.policy.scripted.common import MovingTarget
from enpire.spec.model import ExperimentSpec
from enpire.world.api import AttemptFeedback, Observation

APPROACH_SPEED = 0.35  # m/s
DESCEND_SPEED = 0.15  # m/s
CLOSE_S = 0.3  # s the gripper gets to close before pulling
CLEARANCE = 0.03  # m above the handle centre at approach_height = 0


class DrawerPolicy:
    def __init__(self, params: dict[str, float], dt: float) -> None:
        self.p = params
        self.dt = dt

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        self.phase = "approach"
        self.t_phase = 0.0
        self.target = MovingTarget(obs["ee_pos"], self.dt)
        self.yaw = float(obs["drawer_yaw"][0])
        axis = np.array([-np.cos(self.yaw), -np.sin(self.yaw), 0.0])  # the drawer opens along this
        handle = np.asarray(obs["handle_pos"], dtype=float)
        self.axis = axis
        self.grasp = handle - axis * self.p["grasp_depth"] + np.array([0.0, 0.0, self.p["grasp_height"]])
        self.pregrasp = self.grasp + np.array([0.0, 0.0, CLEARANCE + self.p["approach_height"]])
        self.pull_goal = self.grasp + axis * self.p["pull_distance"]

    def act(self, obs: Observation) -> np.ndarray:
        p, grip = self.p, 0.0
        self.t_phase += self.dt
        if self.phase == "approach":
            pos = self.target.toward(self.pregrasp, APPROACH_SPEED)
            if self.target.arrived(self.pregrasp):
                self.phase, self.t_phase = "descend", 0.0
        elif self.phase == "descend":
            pos = self.target.toward(self.grasp, DESCEND_SPEED)
            if self.target.arrived(self.grasp):
                self.phase, self.t_phase = "close", 0.0
        elif self.phase == "close":
            pos, grip = self.target.pos, p["grip_close"]
            if self.t_phase >= CLOSE_S:
                self.phase, self.t_phase = "pull", 0.0
        else:
            pos, grip = self.target.toward(self.pull_goal, p["pull_speed"]), p["grip_close"]
        return np.array([pos[0], pos[1], pos[2], self.yaw, grip])


def build(spec: ExperimentSpec, params: dict[str, float]) -> DrawerPolicy:
    return DrawerPolicy(params, spec.control_dt)
