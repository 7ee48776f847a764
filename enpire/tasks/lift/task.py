"""lift: grasp a cube on the table and lift it above a height threshold, then hold it.

Success (conf/done/lift.yaml) needs both `object_height` (cube centre above the table) and
`object_to_gripper` (cube centre to the tool centre point) so that a cube flung upward or
balanced on a knuckle does not count: it must be in the hand, up, and stay there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from enpire.world.task import Task, TaskPhysics, dist3, yaw_quat

CUBE_HALF = 0.025  # m, = lift.xml


class LiftPhysics(TaskPhysics):
    """Named state queries of the lift scene."""

    def cube_pos(self) -> np.ndarray:
        return self.body_pos("cube").copy()

    def cube_yaw(self) -> float:
        """Heading of the cube about world z, folded into [-pi/4, pi/4) (a cube has 4-fold symmetry)."""
        m = self.body_xmat_flat("cube").tolist()  # row-major 3x3
        yaw = math.atan2(m[3], m[0])
        return (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4

    def object_height(self) -> float:
        return min(max(float(self.body_pos("cube")[2]), 0.0), 1.0)

    def object_to_gripper(self) -> float:
        return min(dist3(self.body_pos("cube"), self.ee_pos()), 2.0)


class Lift(Task):
    name = "lift"
    xml = "lift.xml"
    detector_camera = "lift_far"  # level with the success height, across the table (lift.xml)
    physics_class = LiftPhysics

    def initialize(self, physics: TaskPhysics, init: Mapping[str, float], rng: np.random.Generator) -> None:
        physics.set_free_pose("cube", [init["cube_x"], init["cube_y"], CUBE_HALF + 1e-4], yaw_quat(init["cube_yaw"]))

    def observe(self, physics: TaskPhysics) -> dict[str, np.ndarray]:
        assert isinstance(physics, LiftPhysics)
        return {"cube_pos": physics.cube_pos(), "cube_yaw": np.array([physics.cube_yaw()])}

    def shaping_reward(self, physics: TaskPhysics) -> float:
        """Reach, then raise: distance to the cube plus progress of the cube toward 0.1 m up."""
        q = physics.quantity
        raised = min(q("object_height") - CUBE_HALF, 0.1) / 0.1
        return -q("object_to_gripper") / 0.1 + 2.0 * max(raised, 0.0)

    def reset_problems(self, physics: TaskPhysics, init: Mapping[str, float]) -> list[str]:
        assert isinstance(physics, LiftPhysics)
        out = []
        p = physics.cube_pos()
        want = np.array([init["cube_x"], init["cube_y"]])
        if np.linalg.norm(p[:2] - want) > 0.01:
            out.append(f"cube at {p[:2].round(3).tolist()}, expected {want.round(3).tolist()} (within 0.01 m)")
        if abs(p[2] - CUBE_HALF) > 0.004:
            out.append(f"cube centre at z={p[2]:.3f} m, expected {CUBE_HALF} (resting on the table)")
        return out

    def should_terminate(self, physics: TaskPhysics) -> bool:
        """The cube left the reachable table area (knocked away): no lift can follow."""
        x, y, _ = physics.body_pos("cube").tolist()
        return not (0.15 < x < 0.8 and abs(y) < 0.4)
