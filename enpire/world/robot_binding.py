"""Where one robot sits inside a compiled scene: the ids and address ranges of its joints,
actuators, gripper and tool centre point, resolved once when the scene is built."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from enpire.world.robots import RobotBuilder


@dataclass(frozen=True)
class BoundRobot:
    """Indices of one robot inside a compiled scene (all arrays read-only)."""

    builder: RobotBuilder
    prefix: str
    qpos_adr: np.ndarray  # arm joints
    dof_adr: np.ndarray
    arm_act: np.ndarray
    grip_act: np.ndarray
    grip_qpos_adr: np.ndarray
    ee_site: int
    geom_mask: np.ndarray  # (ngeom,) True for the robot's geoms
    jnt_range: np.ndarray  # (dof, 2) hard joint ranges, rad
    ctrl_range: np.ndarray  # (dof, 2) arm actuator ctrl ranges, N·m
    grip_ctrl_range: np.ndarray  # (n_grip, 2)

    @property
    def dof(self) -> int:
        return len(self.qpos_adr)

    def ee_linvel(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        res = np.zeros(6)
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_SITE, self.ee_site, res, 0)
        return res[3:]

    def grip_opening(self, data: mujoco.MjData) -> float:
        return self.builder.grip_opening(data.qpos[self.grip_qpos_adr])


def index_or_slice(idx: np.ndarray | list[int]) -> slice | np.ndarray:
    """A slice for contiguous ascending indices (numpy then returns a view, no copy, no gather),
    else the index array. The per-control-step code reads robot state through these."""
    a = np.asarray(idx, dtype=int).ravel()
    if a.size and np.array_equal(a, np.arange(a[0], a[0] + a.size)):
        return slice(int(a[0]), int(a[0]) + a.size)
    return a


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.flags.writeable = False
    return a


def bind_robot(model: mujoco.MjModel, builder: RobotBuilder) -> BoundRobot:
    p = f"{builder.name}/"

    def ids(kind: mujoco.mjtObj, names: tuple[str, ...]) -> np.ndarray:
        out = [mujoco.mj_name2id(model, kind, p + n) for n in names]
        missing = [n for n, i in zip(names, out) if i < 0]
        if missing:
            raise KeyError(f"robot {builder.name}: {kind.name} {missing} not in the composed model")
        return np.array(out, dtype=int)

    joints = ids(mujoco.mjtObj.mjOBJ_JOINT, builder.arm_joints)
    grip_joints = ids(mujoco.mjtObj.mjOBJ_JOINT, builder.gripper_joints())
    root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, p)  # the attachment body
    robot_bodies = set()
    for b in range(model.nbody):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or ""
        if name.startswith(p) or b == root:
            robot_bodies.add(b)
    geom_mask = np.array([model.geom_bodyid[g] in robot_bodies for g in range(model.ngeom)], dtype=bool)
    arm_act = ids(mujoco.mjtObj.mjOBJ_ACTUATOR, builder.arm_actuators)
    grip_act = ids(mujoco.mjtObj.mjOBJ_ACTUATOR, builder.gripper_actuators)
    return BoundRobot(
        builder=builder, prefix=p,
        qpos_adr=_ro(model.jnt_qposadr[joints]), dof_adr=_ro(model.jnt_dofadr[joints]),
        arm_act=_ro(arm_act), grip_act=_ro(grip_act), grip_qpos_adr=_ro(model.jnt_qposadr[grip_joints]),
        ee_site=int(ids(mujoco.mjtObj.mjOBJ_SITE, (builder.ee_site,))[0]),
        geom_mask=_ro(geom_mask), jnt_range=_ro(model.jnt_range[joints]),
        ctrl_range=_ro(model.actuator_ctrlrange[arm_act]), grip_ctrl_range=_ro(model.actuator_ctrlrange[grip_act]),
    )
