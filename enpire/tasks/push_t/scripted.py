"""Scripted push_t baseline: quasi-static pushing strokes with the closed gripper as the pusher.

Each stroke is planned from the observed block pose: while the heading is off by more than
`yaw_tol`, push the end of the cross bar sideways (a turning stroke, length proportional to the
heading error); otherwise push through the centre of mass toward the target (a translating
stroke). A stroke is: rise to a safe height, travel to a stand-off point behind the contact,
descend, push along a straight line, rise again. When both errors are inside the tolerances
the pusher backs off and waits. Waypoints advance when the moving set-point arrives and a short
dwell has passed; `servo_gain` adds an integral correction of the compliant arm's steady
tracking error. Tolerances looser than the frozen done thresholds and no servo (the defaults)
are exactly what an agent has to tune away.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from enpire.policy.scripted.common import action, clip, norm
from enpire.world.api import AttemptFeedback, Observation

T_BOXES = (  # = enpire.tasks.push_t.task.T_BOXES (centre_x, centre_y, half_x, half_y), block frame
    (0.0, 0.0257, 0.06, 0.015),
    (0.0, -0.0343, 0.015, 0.045),
)
PUSHER_RADIUS = 0.014  # m, half-width of the closed jaws
PUSH_Z = 0.022  # m, tool-centre height while pushing: fingertips ~7 mm above the table
SAFE_Z = 0.09  # m, clears the block while travelling
LEVER = 0.048  # m, distance of the turning contact from the centre along the cross bar

PARAMS = ("stroke", "standoff", "yaw_tol", "pos_tol", "push_speed", "servo_gain")
SERVO_LIMIT = 0.03  # m, largest integral correction per axis
DWELL_S = 0.15  # s at each waypoint so the compliant arm catches up with its set-point


def wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def rot(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s], [s, c]])


def contact_distance(direction_block: np.ndarray, origin_block: np.ndarray | None = None) -> float:
    """How far from `origin` (block frame) along -direction the pusher first touches the T."""
    o = np.zeros(2) if origin_block is None else origin_block
    ts = np.linspace(0.0, 0.15, 301)
    pts = o[None, :] - ts[:, None] * direction_block[None, :]
    inside = np.zeros(len(ts), dtype=bool)
    for cx, cy, hx, hy in T_BOXES:
        inside |= (np.abs(pts[:, 0] - cx) <= hx + PUSHER_RADIUS) & (np.abs(pts[:, 1] - cy) <= hy + PUSHER_RADIUS)
    return float(ts[np.nonzero(inside)[0][-1]]) if inside.any() else 0.0


class PushTPolicy:
    """Stroke planner + waypoint follower (see module docstring)."""

    def __init__(self, params: Mapping[str, float], control_dt: float) -> None:
        p = {k: float(params[k]) for k in PARAMS}
        self.servo_gain = p["servo_gain"]
        self.stroke = float(p["stroke"])
        self.standoff = float(p["standoff"])
        self.yaw_tol = float(p["yaw_tol"])
        self.pos_tol = float(p["pos_tol"])
        self.push_speed = float(p["push_speed"])
        self.travel_speed = 0.35  # m/s
        self.dt = control_dt
        self._plan: list[tuple[np.ndarray, float]] = []
        self._setpoint = np.zeros(3)

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        self._plan = []
        self._setpoint = np.asarray(obs["ee_pos"], dtype=float).copy()
        self._bias = np.zeros(3)
        self._waited = 0.0

    # -- planning ------------------------------------------------------------------------
    def _errors(self, obs: Observation) -> tuple[np.ndarray, float]:
        d = np.asarray(obs["target_pos"][:2]) - np.asarray(obs["block_pos"][:2])
        return d, wrap(float(obs["target_yaw"][0]) - float(obs["block_yaw"][0]))

    def _stroke(self, obs: Observation) -> tuple[np.ndarray, np.ndarray] | None:
        """(start, end) xy of the next push in the world frame, or None when on target."""
        d, yaw_err = self._errors(obs)
        c, yaw = np.asarray(obs["block_pos"][:2], dtype=float), float(obs["block_yaw"][0])
        r = rot(yaw)
        if abs(yaw_err) > self.yaw_tol:
            sign = 1.0 if yaw_err > 0 else -1.0
            length = min(self.stroke, abs(yaw_err) * LEVER * 1.2)
            options = []
            for end_x in (LEVER, -LEVER):  # push the bar end up (+y) at +x or down (-y) at -x to turn +yaw
                u_b = np.array([0.0, sign * (1.0 if end_x > 0 else -1.0)])
                origin = np.array([end_x, 0.0257])
                t = contact_distance(u_b, origin)
                start_b = origin - (t + self.standoff) * u_b
                end_b = origin - t * u_b + length * u_b
                start, end = c + r @ start_b, c + r @ end_b
                options.append((float(np.dot(r @ u_b, d)), start, end))
            _, start, end = max(options, key=lambda o: o[0])  # the turn that also helps the translation
            return start, end
        dist = float(np.linalg.norm(d))
        if dist > self.pos_tol:
            u = d / dist
            t = contact_distance(r.T @ u)
            length = min(self.stroke, dist)
            return c - (t + self.standoff) * u, c + (length - t) * u
        return None

    def _replan(self, obs: Observation) -> None:
        s = self._stroke(obs)
        ee = np.asarray(obs["ee_pos"], dtype=float)
        if s is None:  # on target: back off upward and wait
            self._plan = [(np.array([ee[0], ee[1], SAFE_Z]), self.travel_speed)]
            return
        start, end = s
        self._plan = [
            (np.array([ee[0], ee[1], SAFE_Z]), self.travel_speed),
            (np.array([start[0], start[1], SAFE_Z]), self.travel_speed),
            (np.array([start[0], start[1], PUSH_Z]), self.travel_speed),
            (np.array([end[0], end[1], PUSH_Z]), self.push_speed),
            (np.array([end[0], end[1], SAFE_Z]), self.travel_speed),
        ]

    # -- acting --------------------------------------------------------------------------
    def act(self, obs: Observation) -> np.ndarray:
        ee = np.asarray(obs["ee_pos"], dtype=float)
        if not self._plan:
            self._replan(obs)
        goal, speed = self._plan[0]
        step = goal - self._setpoint
        n = norm(step)
        self._setpoint = goal.copy() if n <= speed * self.dt else self._setpoint + step / n * speed * self.dt
        if n <= speed * self.dt:  # set-point arrived; dwell, then the next waypoint (or a re-plan)
            self._waited += self.dt
            if self._waited >= DWELL_S:
                self._plan.pop(0)
                self._waited = 0.0
        self._bias = clip(self._bias + self.servo_gain * self.dt * (self._setpoint - ee), -SERVO_LIMIT, SERVO_LIMIT)
        return action(self._setpoint + self._bias, 0.0, 1.0)


def build(spec, params: Mapping[str, float]) -> PushTPolicy:  # noqa: ANN001  (ExperimentSpec)
    return PushTPolicy(params, spec.control_dt)
