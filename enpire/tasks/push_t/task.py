"""push_t: push a T-shaped block (no grasp) onto a marked target pose; position and heading matter.

The arena (push_t.xml) holds the block on a freejoint and a contact-free translucent T at the
target. The block's frame is at its centre of mass, so `block_pos_error` is the planar distance
of centres and `block_yaw_error` the absolute wrapped heading difference: both are needed,
because a T pushed to the right spot but turned is not "on the mark". The block has no
symmetry, so headings are compared over the full circle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from enpire.world.task import Task, TaskPhysics, yaw_quat

# The T in its own frame (centre of mass at the origin, stem along -y): (centre_x, centre_y, half_x, half_y).
# Mirrors push_t.xml; the scripted policy plans its contact points on these boxes.
T_BOXES: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0257, 0.06, 0.015),  # cross bar
    (0.0, -0.0343, 0.015, 0.045),  # stem
)
T_HALF_HEIGHT = 0.015  # m
TARGET_XY = (0.52, 0.0)  # m, matches body "target" in push_t.xml
TARGET_YAW = 0.0  # rad
_TARGET_POS = np.array([*TARGET_XY, T_HALF_HEIGHT])  # observed every step: copies of these
_TARGET_YAW = np.array([TARGET_YAW])


def wrap_angle(a: float) -> float:
    """Angle wrapped into [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


class PushTPhysics(TaskPhysics):
    """Named state queries of the push_t scene (the verifier's only view of it)."""

    def block_xy(self) -> np.ndarray:
        return self.body_pos("block")[:2].copy()

    def block_yaw(self) -> float:
        m = self.body_xmat_flat("block").tolist()  # row-major 3x3
        return math.atan2(m[3], m[0])

    def block_pos_error(self) -> float:
        x, y = self.body_pos("block")[:2].tolist()
        return min(math.hypot(x - TARGET_XY[0], y - TARGET_XY[1]), 1.0)

    def block_yaw_error(self) -> float:
        return min(abs(wrap_angle(self.block_yaw() - TARGET_YAW)), math.pi)

    def block_height(self) -> float:
        """Height of the block's centre above the table (tipped or lifted blocks are out of the game)."""
        return float(self.body_pos("block")[2])


class PushT(Task):
    name = "push_t"
    xml = "push_t.xml"
    physics_class = PushTPhysics

    def initialize(self, physics: TaskPhysics, init: Mapping[str, float], rng: np.random.Generator) -> None:
        physics.set_free_pose("block", [init["block_x"], init["block_y"], T_HALF_HEIGHT + 1e-4],
                              yaw_quat(init["block_yaw"]))

    def observe(self, physics: TaskPhysics) -> dict[str, np.ndarray]:
        return {
            "block_pos": physics.body_pos("block").copy(),
            "block_yaw": np.array([physics.quantity("block_yaw")]),
            "target_pos": _TARGET_POS.copy(),
            "target_yaw": _TARGET_YAW.copy(),
        }

    def shaping_reward(self, physics: TaskPhysics) -> float:
        """Closer and better aligned is better; 0.05 m of position weighs like 0.5 rad of heading."""
        q = physics.quantity
        return -(q("block_pos_error") / 0.05 + q("block_yaw_error") / 0.5)

    def reset_problems(self, physics: TaskPhysics, init: Mapping[str, float]) -> list[str]:
        assert isinstance(physics, PushTPhysics)
        out = []
        xy = physics.block_xy()
        want = np.array([init["block_x"], init["block_y"]])
        if np.linalg.norm(xy - want) > 0.01:
            out.append(f"block at {xy.round(3).tolist()}, expected {want.round(3).tolist()} (within 0.01 m)")
        if abs(wrap_angle(physics.block_yaw() - init["block_yaw"])) > 0.05:
            out.append(f"block yaw {physics.block_yaw():.3f} rad, expected {init['block_yaw']:.3f} (within 0.05)")
        if abs(physics.block_height() - T_HALF_HEIGHT) > 0.005:
            out.append(f"block centre at z={physics.block_height():.3f} m, expected {T_HALF_HEIGHT} (flat on table)")
        return out

    def should_terminate(self, physics: TaskPhysics) -> bool:
        """A block tipped over, lifted, or pushed far away can no longer be put on the mark."""
        q = physics.quantity
        return abs(q("block_height") - T_HALF_HEIGHT) > 0.02 or q("block_pos_error") > 0.4
