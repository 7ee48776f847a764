"""drawer: open a cabinet drawer by its handle (the default task). MJCF: drawer.xml."""

from __future__ import annotations

import math
from collections.abc import Mapping

import mujoco
import numpy as np

from enpire.world.task import Task, TaskPhysics, dist3, yaw_quat

HANDLE_TARGET_OPENING = 0.15  # m, only for shaping; success is conf/done/drawer.yaml's business


class DrawerPhysics(TaskPhysics):
    """Named state queries of the drawer scene."""

    def bind(self) -> None:
        self._slide = self.joint_qpos_adr("drawer_slide")
        self._qpos = self.data.qpos
        self._handle = self.site_pos("handle_centre")

    def drawer_opening(self) -> float:
        return min(max(float(self._qpos[self._slide]), 0.0), 0.3)

    def handle_distance(self) -> float:
        return min(dist3(self.ee_pos(), self._handle), 2.0)

    def pull_axis(self) -> np.ndarray:
        """Unit vector along which the drawer opens (world frame, horizontal)."""
        return -self.body_xmat("cabinet")[:, 0]


class Drawer(Task):
    name = "drawer"
    xml = "drawer.xml"
    detector_camera = "drawer_side"  # on the cabinet, across the drawer's path (drawer.xml)
    physics_class = DrawerPhysics

    def initialize(self, physics: TaskPhysics, init: Mapping[str, float], rng: np.random.Generator) -> None:
        m = physics.model
        cab = physics.body_id("cabinet")
        m.body_pos[cab] = [init["cabinet_x"], init["cabinet_y"], 0.0]
        m.body_quat[cab] = yaw_quat(init["cabinet_yaw"])
        j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "drawer_slide")
        m.dof_frictionloss[m.jnt_dofadr[j]] = init["drawer_friction"]
        physics.set_joint_qpos("drawer_slide", 0.0)

    def observe(self, physics: TaskPhysics) -> dict[str, np.ndarray]:
        m = physics.body_xmat_flat("cabinet").tolist()  # row-major; pull axis = -(column 0)
        return {
            "handle_pos": physics.site_pos("handle_centre").copy(),
            "drawer_yaw": np.array([math.atan2(m[3], m[0])]),
            "drawer_opening": np.array([physics.quantity("drawer_opening")]),
        }

    def shaping_reward(self, physics: TaskPhysics) -> float:
        q = physics.quantity
        return -q("handle_distance") + 2.0 * min(q("drawer_opening"), HANDLE_TARGET_OPENING)

    def reset_problems(self, physics: TaskPhysics, init: Mapping[str, float]) -> list[str]:
        assert isinstance(physics, DrawerPhysics)
        out = []
        if physics.drawer_opening() > 0.005:
            out.append(f"drawer not closed after reset: opening {physics.drawer_opening():.4f} m")
        cab = physics.body_pos("cabinet")
        if abs(cab[0] - init["cabinet_x"]) > 1e-6 or abs(cab[1] - init["cabinet_y"]) > 1e-6:
            out.append(f"cabinet at {cab[:2]} instead of ({init['cabinet_x']:.3f}, {init['cabinet_y']:.3f})")
        return out
