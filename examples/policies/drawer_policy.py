"""A drawer-opening code policy: run it with

    python -m enpire policy=code policy.source=examples/policies/drawer_policy.py

It runs inside enpire's sandbox (its own process, no network, read-only file system, a
private working directory), so it may import only the standard library and numpy, and must
answer each act() within the step deadline (0.5 s by default). See docs/policies.md.

The contract: define `make_policy()` (or a class `Policy`) returning an object with
`reset(obs, feedback)` and `act(obs) -> [x, y, z, yaw, grip]`. Observations are numpy
arrays keyed by name; on drawer: ee_pos, ee_yaw, grip, joint_pos, joint_vel, handle_pos,
drawer_yaw, drawer_opening. `feedback` is None at the start of a trial, and on a retry has
`.attempt`, `.reason` (the verifier's words) and `.quantities` (final task quantities).

Strategy: move a set-point above the handle, descend onto it, close the gripper firmly, then
pull along the drawer's slide axis. The grasp point sits 1 cm past the handle centre (the
fingers wrap the bar instead of catching its edge) and the pull aims 22 cm out, the tuned
parameters of the scripted drawer baseline (docs/world.md). The set-point never leaves the
station's workspace box (conf/safety/drawer.yaml, less a margin): a pull that runs into it
would be a safety stop, not a stronger pull. On a retry (the world is not reset: the drawer
may be part open) it grasps the handle where it now is, a little lower, and pulls again.
"""

import numpy as np

DT = 0.02  # s per control step (the drawer task's control period)
SPEED = {"approach": 0.35, "descend": 0.15, "pull": 0.25}  # m/s of the moving set-point
CLOSE_S = 0.3  # s to close the gripper before pulling
# the station's end-effector workspace box (conf/safety/drawer.yaml) less a 2.5 cm margin
WORKSPACE_LOW = np.array([0.2, -0.35, 0.005]) + 0.025
WORKSPACE_HIGH = np.array([0.72, 0.35, 0.5]) - 0.025


class DrawerPolicy:
    def __init__(self, grasp_height=0.0, grasp_depth=0.01, approach_height=0.04, pull_distance=0.22, grip=1.0):
        self.grasp_height = grasp_height
        self.grasp_depth = grasp_depth
        self.approach_height = approach_height
        self.pull_distance = pull_distance
        self.grip = grip

    def reset(self, obs, feedback=None):
        if feedback is not None:  # a retry: the previous pull slipped or stopped short
            self.grasp_height -= 0.005
        self.yaw = float(obs["drawer_yaw"][0])
        axis = np.array([-np.cos(self.yaw), -np.sin(self.yaw), 0.0])  # the drawer opens along this
        handle = np.asarray(obs["handle_pos"], dtype=float)
        self.grasp = handle - axis * self.grasp_depth + np.array([0.0, 0.0, self.grasp_height])
        self.waypoints = {
            "approach": self.grasp + np.array([0.0, 0.0, 0.03 + self.approach_height]),
            "descend": self.grasp,
            "pull": self.grasp + axis * self.pull_distance,
        }
        for name, point in self.waypoints.items():
            self.waypoints[name] = np.clip(point, WORKSPACE_LOW, WORKSPACE_HIGH)
        self.setpoint = np.asarray(obs["ee_pos"], dtype=float).copy()
        self.phase, self.t_phase = "approach", 0.0

    def _move(self, goal, speed):
        delta = goal - self.setpoint
        dist = float(np.linalg.norm(delta))
        step = speed * DT
        self.setpoint = goal.copy() if dist <= step else self.setpoint + delta * (step / dist)
        return dist <= step

    def act(self, obs):
        self.t_phase += DT
        grip = 0.0
        if self.phase == "approach":
            if self._move(self.waypoints["approach"], SPEED["approach"]):
                self.phase, self.t_phase = "descend", 0.0
        elif self.phase == "descend":
            if self._move(self.waypoints["descend"], SPEED["descend"]):
                self.phase, self.t_phase = "close", 0.0
        elif self.phase == "close":
            grip = self.grip
            if self.t_phase >= CLOSE_S:
                self.phase, self.t_phase = "pull", 0.0
        else:
            grip = self.grip
            self._move(self.waypoints["pull"], SPEED["pull"])
        return [*self.setpoint, self.yaw, grip]


def make_policy():
    return DrawerPolicy()
