"""Scripted valve baseline: come down beside the lever's tip, then sweep round the hinge, pushing.

The gripper (closed, as a blunt pusher) goes above a point just behind the tip, descends to the
lever's height and then follows a circle about the hub, a little behind the lever, until the
commanded angle reaches `sweep`; it then holds still. Parameters (conf/policy/valve_scripted.yaml):
radius, lead, height, sweep, speed, yaw.
"""

from __future__ import annotations

import math

import numpy as np

from enpire.policy.scripted.common import MovingTarget, action
from enpire.spec.model import ExperimentSpec
from enpire.world.api import AttemptFeedback, Observation

APPROACH_Z = 0.1  # m above the lever before coming down


class ValvePolicy:
    def __init__(self, params: dict[str, float], dt: float) -> None:
        self.p = params
        self.dt = dt

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        self.target = MovingTarget(obs["ee_pos"], self.dt)
        self.hub = np.array(obs["hub_pos"], dtype=float)
        self.angle = float(obs["valve_angle"][0]) - self.p["lead"]  # commanded angle: behind the lever
        self.phase = 0

    def _on_circle(self, angle: float, z: float) -> np.ndarray:
        # The lever points along -x at angle 0; a positive angle turns it toward -y.
        a = math.pi + angle
        r = self.p["radius"]
        return np.array([self.hub[0] + r * math.cos(a), self.hub[1] + r * math.sin(a), z])

    def act(self, obs: Observation) -> np.ndarray:
        z = self.hub[2] + self.p["height"]
        yaw = self.p["yaw"]
        if self.phase == 0:  # above the start point
            goal = self._on_circle(self.angle, z + APPROACH_Z)
            if self.target.arrived(goal):
                self.phase = 1
        elif self.phase == 1:  # down beside the tip
            goal = self._on_circle(self.angle, z)
            if self.target.arrived(goal):
                self.phase = 2
        else:  # sweep round the hub at the set tip speed
            self.angle = min(self.p["sweep"], self.angle + self.p["speed"] / self.p["radius"] * self.dt)
            goal = self._on_circle(self.angle, z)
        return action(self.target.toward(goal, 0.3 if self.phase < 2 else 1.0), yaw, 1.0)


def build(spec: ExperimentSpec, params: dict[str, float]) -> ValvePolicy:
    return ValvePolicy(params, spec.control_dt)
