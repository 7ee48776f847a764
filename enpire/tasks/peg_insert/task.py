"""peg_insert: the gripper holds a square peg; insert it into a tight square hole whose position varies.

The peg (20 mm square, 100 mm long) is mounted in the gripper through a soft weld (see
peg_insert.xml for why not a friction grasp); `grasp_offset` shifts it along the jaw's width
at every reset, so a policy that assumes the peg sits on the tool centre misses the hole
(2 mm clearance per side). `peg_depth` is how far the peg tip is below the hole rim, counted
only while the tip is inside the hole's footprint (a peg beside the fixture is not "in");
`peg_lateral_error` is the horizontal distance of the tip from the hole axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import mujoco
import numpy as np

from enpire.world.task import Task, TaskPhysics

HOLE_HALF = 0.012  # m, = peg_insert.xml
PEG_HALF = 0.01  # m, half width of the peg's square section
PEG_HALF_LEN = 0.05  # m
RIM_Z = 0.05  # m, top of the fixture
MOUNT_Z = 0.11  # m, peg centre along the wrist link's z axis (= weld relpose)
MOUNT_QUAT = (0.0, 1.0, 0.0, 0.0)  # peg z axis opposite the tool axis: peg points up when the tool points down
WRIST_BODY = "enarm/link6"


class PegInsertPhysics(TaskPhysics):
    """Named state queries of the peg_insert scene."""

    def hole_pos(self) -> np.ndarray:
        return self.site_pos("hole_rim").copy()

    def peg_tip(self) -> np.ndarray:
        return self.site_pos("peg_tip").copy()

    def peg_lateral_error(self) -> float:
        tx, ty, _ = self.site_pos("peg_tip").tolist()
        hx, hy, _ = self.site_pos("hole_rim").tolist()
        return min(math.hypot(tx - hx, ty - hy), 1.0)

    def peg_depth(self) -> float:
        tx, ty, tz = self.site_pos("peg_tip").tolist()
        hx, hy, hz = self.site_pos("hole_rim").tolist()
        if abs(tx - hx) > HOLE_HALF or abs(ty - hy) > HOLE_HALF:
            return 0.0
        return min(max(hz - tz, 0.0), 0.06)


class PegInsert(Task):
    name = "peg_insert"
    xml = "peg_insert.xml"
    physics_class = PegInsertPhysics

    def initialize(self, physics: TaskPhysics, init: Mapping[str, float], rng: np.random.Generator) -> None:
        m, d = physics.model, physics.data
        mocap = m.body_mocapid[physics.body_id("fixture")]
        d.mocap_pos[mocap] = [init["hole_x"], init["hole_y"], 0.0]
        # Mount the peg with this reset's offset along the jaw width (the wrist's y axis).
        eq = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_EQUALITY, "peg_mount")
        rel = np.array([0.0, init["grasp_offset"], MOUNT_Z])
        m.eq_data[eq, 3:6] = rel
        m.eq_data[eq, 6:10] = MOUNT_QUAT
        # Put the peg exactly where the weld wants it, so the reset starts without a jolt.
        mujoco.mj_kinematics(m, d)
        wrist = physics.body_id(WRIST_BODY)
        pos = d.xpos[wrist] + d.xmat[wrist].reshape(3, 3) @ rel
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, d.xquat[wrist], np.asarray(MOUNT_QUAT))
        physics.set_free_pose("peg", pos, quat)

    def observe(self, physics: TaskPhysics) -> dict[str, np.ndarray]:
        assert isinstance(physics, PegInsertPhysics)
        return {"peg_tip": physics.peg_tip(), "hole_pos": physics.hole_pos()}

    def shaping_reward(self, physics: TaskPhysics) -> float:
        """Line up first (lateral error), then go down (depth)."""
        q = physics.quantity
        return -q("peg_lateral_error") / 0.01 + q("peg_depth") / 0.01

    def reset_problems(self, physics: TaskPhysics, init: Mapping[str, float]) -> list[str]:
        assert isinstance(physics, PegInsertPhysics)
        out = []
        hole = physics.hole_pos()
        if np.linalg.norm(hole[:2] - [init["hole_x"], init["hole_y"]]) > 1e-6:
            out.append(f"hole at {hole[:2].round(3).tolist()}, expected {[init['hole_x'], init['hole_y']]}")
        tip = physics.peg_tip()
        if tip[2] < RIM_Z + 0.02:
            out.append(f"peg tip at z={tip[2]:.3f} m, expected above the fixture rim {RIM_Z} m (peg in the gripper)")
        tool = physics.ee_pos()
        if np.linalg.norm(tip[:2] - tool[:2]) > 0.015:
            out.append(f"peg tip {np.linalg.norm(tip[:2] - tool[:2]):.3f} m off the tool axis, expected <= 0.015")
        return out
