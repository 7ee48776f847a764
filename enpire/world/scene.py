"""Compose a task's arena with a robot into one MuJoCo model, and bind the robot's ids.

The arena (the task's XML) gets the robot attached at `robot.base_pos`; the composed MJCF is
compiled once per station into a plain `mujoco.MjModel` (no dm_control Physics on the hot
path: the station steps raw MuJoCo).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from enpire.spec.model import ExperimentSpec
from enpire.world.robots import RobotBuilder, make_robot
from enpire.world.tasks.base import Task, TaskPhysics, make_task


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


def compose_model(task: Task, builder: RobotBuilder, spec: ExperimentSpec) -> mujoco.MjModel:
    """The compiled scene: task arena + robot at base_pos, timestep and offscreen buffer set."""
    arena = task.arena()
    robot = builder.build()
    site = arena.worldbody.add("site", name="robot_base", pos=list(spec.robot.base_pos), size=[0.001])
    site.attach(robot)
    vis = getattr(arena.visual, "global")
    vis.offwidth = max(int(vis.offwidth or 640), spec.video.width, 640)
    vis.offheight = max(int(vis.offheight or 480), spec.video.height, 480)
    arena.visual.quality.shadowsize = 1024  # software EGL renders much faster with small shadow maps
    model = mujoco.MjModel.from_xml_string(arena.to_xml_string(), assets=arena.get_assets())
    model.opt.timestep = spec.task.physics_dt
    return model


@dataclass
class Scene:
    """A built world: task, robot binding, model, data and the task's physics view."""

    task: Task
    robot: BoundRobot
    model: mujoco.MjModel
    data: mujoco.MjData
    physics: TaskPhysics


def build_scene(spec: ExperimentSpec) -> Scene:
    task = make_task(spec.task)
    builder = make_robot(spec.robot.name)
    model = compose_model(task, builder, spec)
    data = mujoco.MjData(model)
    robot = bind_robot(model, builder)
    if robot.dof != spec.robot.dof:
        raise ValueError(f"robot.dof: got {spec.robot.dof}; the {builder.name} model has {robot.dof} arm joints")
    physics = task.physics_class(model, data, robot)
    missing = [q for q in spec.task.state_space if not callable(getattr(physics, q, None))]
    if missing:
        raise ValueError(f"task.state_space: {missing} are not state queries of {type(physics).__name__}")
    return Scene(task, robot, model, data, physics)
