"""enarm: enpire's own 6-DoF torque-driven arm with a parallel-jaw gripper (assets/enarm.xml)."""

from __future__ import annotations

import numpy as np
from dm_control import mjcf

from enpire.world.robots.base import RobotBuilder
from enpire.world.robots.paths import ASSETS

FINGER_OPEN_M = 0.04  # per finger, = the slide joints' upper range


class EnArm(RobotBuilder):
    name = "enarm"
    arm_joints = tuple(f"joint_{i}" for i in range(1, 7))
    arm_actuators = arm_joints
    gripper_actuators = ("finger_left", "finger_right")
    ee_site = "tcp"
    # TCP at about (0.4, 0, 0.25), gripper pointing down, jaws along world x.
    home_qpos = (0.0, 0.2996, 2.029, 0.813, 0.0, 0.0)

    def build(self) -> mjcf.RootElement:
        return mjcf.from_path(str(ASSETS / "enarm.xml"))

    def grip_ctrl(self, grip: float) -> np.ndarray:
        g = min(max(float(grip), 0.0), 1.0) if np.isfinite(grip) else 0.0
        target = FINGER_OPEN_M * (1.0 - g)
        return np.array([target, target])

    def gripper_joints(self) -> tuple[str, ...]:
        return ("finger_left", "finger_right")

    def grip_opening(self, grip_qpos: np.ndarray) -> float:
        left, right = grip_qpos.tolist()  # inner faces sit at +q_left and -q_right
        return left + right
