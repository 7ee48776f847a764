"""Compose a task's arena with a robot into one MuJoCo model, and bind the robot's ids.

The arena (the task's XML) gets the robot attached at `robot.base_pos`; the composed MJCF is
compiled once per station into a plain `mujoco.MjModel` (no dm_control Physics on the hot
path: the station steps raw MuJoCo).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco

from enpire.spec.model import ExperimentSpec
from enpire.world.declarative import declare_quantities
from enpire.world.dynamics import apply_to_model
from enpire.world.robot_binding import BoundRobot, bind_robot, index_or_slice
from enpire.world.robots import RobotBuilder, make_robot
from enpire.world.task import Task, TaskPhysics
from enpire.world.task_factory import make_task

__all__ = ["BoundRobot", "Scene", "bind_robot", "build_scene", "compose_model", "index_or_slice"]


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
    apply_to_model(spec.dynamics, model, data, robot)  # dynamics=perturbed: a sim-to-sim gap (docs/twin.md)
    physics = task.physics_class(model, data, robot)
    declare_quantities(physics, spec.task.state_space)
    missing = [q for q in spec.task.state_space if not physics.has_quantity(q)]
    if missing:
        raise ValueError(f"task.state_space: {missing} are neither state queries of {type(physics).__name__} "
                         "nor declared with `from:`")
    return Scene(task, robot, model, data, physics)
