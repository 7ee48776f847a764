"""jaco: the Kinova Jaco arm and three-finger hand shipped inside dm-control, torque-driven.

dm-control drives the arm with velocity servos; enpire replaces them with `motor` actuators
(ctrlrange = Kinova's datasheet peak torques: 30.5 N·m for joints 1-3, 6.8 N·m for 4-6), so
the same Cartesian impedance controller and envelope as enarm apply. The fingers get
position servos (the hand closes on a grip command in [0, 1]). Joints 1, 4, 5 and 6 of the
real arm rotate without a hard stop, so the envelope's joint-position check applies to
joints 2 and 3 only. A tool centre point site `tcp` sits 3 cm inside the hand's pinch point,
between the fingertip pads, with dm-control's pinch frame (z out of the hand, x the closing axis).
The home posture was solved by numerical IK (enpire.world.robots.ik).
"""

from __future__ import annotations

import numpy as np
from dm_control import mjcf
from dm_control.entities.manipulators.kinova import JacoArm, JacoHand

from enpire.world.robots.base import RobotBuilder

LARGE_TORQUE_NM = 30.5
SMALL_TORQUE_NM = 6.8
FINGER_RANGE = (0.15, 1.35)  # rad, dm-control's finger joint range (open .. closed)
TCP_INSET_M = 0.03  # m from the pinch site toward the palm: the fingertip pads


class Jaco(RobotBuilder):
    name = "jaco"
    arm_joints = tuple(f"joint_{i}" for i in range(1, 7))
    arm_actuators = tuple(f"motor_{i}" for i in range(1, 7))
    gripper_actuators = ("jaco_hand/grip_1", "jaco_hand/grip_2", "jaco_hand/grip_3")
    ee_site = "jaco_hand/tcp"
    # TCP at (0.4, 0, 0.25), hand pointing down, closing axis along world x: solved by
    # enpire.world.robots.ik.solve_pose(Jaco(), (0.4, 0, 0.25)); test_robots checks it still holds.
    home_qpos = (0.1894, 2.7014, 4.905, 0.2969, -1.0982, -1.0845)

    def build(self) -> mjcf.RootElement:
        arm, hand = JacoArm(), JacoHand()
        arm.attach(hand, arm.wrist_site)
        root = arm.mjcf_model
        root.model = self.name
        for act in list(root.find_all("actuator")):
            act.remove()
        for i, joint in enumerate(arm.joints):
            limit = LARGE_TORQUE_NM if i < 3 else SMALL_TORQUE_NM
            joint.damping = 1.0 if i < 3 else 0.2
            joint.armature = 0.3 if i < 3 else 0.1
            root.actuator.add("motor", name=f"motor_{i + 1}", joint=joint, ctrlrange=[-limit, limit])
        hroot = hand.mjcf_model
        for i, joint in enumerate(hand.joints):
            joint.damping = 0.05
            hroot.actuator.add("position", name=f"grip_{i + 1}", joint=joint, kp=5.0,
                               ctrlrange=list(FINGER_RANGE), forcerange=[-1.5, 1.5])
        pinch = hand.pinch_site
        # dm-control's pinch site already has the enpire tool-frame convention: z points out of the
        # hand (toward the fingertips) and x along the closing axis (finger 1 against fingers 2 and 3).
        # The tcp keeps that frame and sits TCP_INSET closer to the palm, between the fingertip pads.
        pos = np.asarray(pinch.pos, dtype=float) + np.array([0.0, 0.0, TCP_INSET_M])  # hand z points to the palm
        pinch.parent.add("site", name="tcp", pos=pos.tolist(), quat=list(pinch.quat), size=[0.008],
                         rgba=[1, 0.2, 0.2, 0.6])
        for geom in root.find_all("geom"):
            geom.contype, geom.conaffinity = 2, 1
        for geom in hroot.find_all("geom"):
            geom.contype, geom.conaffinity = 2, 1
        return root

    def grip_ctrl(self, grip: float) -> np.ndarray:
        g = min(max(float(grip), 0.0), 1.0) if np.isfinite(grip) else 0.0
        lo, hi = FINGER_RANGE
        return np.full(3, lo + g * (hi - lo))

    def gripper_joints(self) -> tuple[str, ...]:
        return ("jaco_hand/finger_1", "jaco_hand/finger_2", "jaco_hand/finger_3")

    def grip_opening(self, grip_qpos: np.ndarray) -> float:
        lo, hi = FINGER_RANGE
        q = grip_qpos.tolist()  # observed every step: = np.clip((hi - np.mean(q)) / (hi - lo), 0, 1) in floats
        return min(max((hi - sum(q) / len(q)) / (hi - lo), 0.0), 1.0)  # 1 open, 0 closed
