"""Scripted peg_insert baseline: carry the peg over the hole, line it up, push it straight down.

The peg sits in the gripper off the tool axis by a few millimetres (different at every reset)
and the compliant arm settles a little off its set-point, while the hole leaves only 2 mm per
side. Two parameters address exactly that: `offset_comp` (how much of the observed
peg-to-tool offset to correct for; 0 aims the tool, not the peg, at the hole) and
`servo_gain` (integral correction of the arm's tracking error). The others shape the motion:
hover height, insertion speed and how deep to aim.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from enpire.policy.scripted.common import action, clip, norm
from enpire.world.api import AttemptFeedback, Observation

PARAMS = ("approach_height", "offset_comp", "align_time", "insert_speed", "insert_depth", "servo_gain")
TRAVEL_SPEED = 0.25  # m/s
SERVO_LIMIT = 0.03  # m, largest integral correction per axis


class PegInsertPolicy:
    def __init__(self, params: Mapping[str, float], control_dt: float) -> None:
        self.p = {k: float(params[k]) for k in PARAMS}
        self.dt = control_dt

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        """Plan from the observed hole and the peg's offset from the tool centre."""
        ee, tip = np.asarray(obs["ee_pos"], dtype=float), np.asarray(obs["peg_tip"], dtype=float)
        hole = np.asarray(obs["hole_pos"], dtype=float)
        offset = ee - tip  # tool centre relative to the peg tip
        offset[:2] *= self.p["offset_comp"]
        above = hole + offset + np.array([0.0, 0.0, self.p["approach_height"]])
        down = hole + offset - np.array([0.0, 0.0, self.p["insert_depth"]])
        self._setpoint = ee.copy()
        self._bias = np.zeros(3)
        self._t = 0.0
        # (goal, speed, dwell s): up and over, line up, insert, stay.
        self._plan = [
            (np.array([ee[0], ee[1], max(ee[2], above[2])]), TRAVEL_SPEED, 0.0),
            (above, TRAVEL_SPEED, self.p["align_time"]),
            (down, self.p["insert_speed"], 1e9),
        ]

    def act(self, obs: Observation) -> np.ndarray:
        goal, speed, dwell = self._plan[0]
        step = goal - self._setpoint
        n = norm(step)
        move = speed * self.dt
        self._setpoint = goal.copy() if n <= move else self._setpoint + step / n * move
        if n <= move:
            self._t += self.dt
            if self._t >= dwell and len(self._plan) > 1:
                self._plan.pop(0)
                self._t = 0.0
        ee = np.asarray(obs["ee_pos"], dtype=float)
        self._bias = clip(self._bias + self.p["servo_gain"] * self.dt * (self._setpoint - ee),
                             -SERVO_LIMIT, SERVO_LIMIT)
        return action(self._setpoint + self._bias, 0.0, 1.0)


def build(spec, params: Mapping[str, float]) -> PegInsertPolicy:  # noqa: ANN001  (ExperimentSpec)
    return PegInsertPolicy(params, spec.control_dt)
