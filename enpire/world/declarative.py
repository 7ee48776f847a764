"""What a task yaml can say without Python: init values set on named elements, quantities read
from them (enpire.world.quantities), and a whole task from an MJCF and a yaml (`mjcf:`).

An init key with `set:` is applied at every reset before the task's own `initialize`:

    init:
      valve_start: {low: -0.3, high: 0.3, set: {joint: valve_hinge}}      # joint position
      post_x:      {low: 0.5, high: 0.6, set: {body: post, coordinate: x}}  # body x, y, z or yaw

A declarative task (`mjcf: task/slide.xml`, the path relative to a config directory on the
search path, so the MJCF lies beside its yaml; the loaded spec holds the absolute path)
observes every state quantity (one float each, keyed by name) and its shaping reward is the
weighted sum its `shaping:` list declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import mujoco
import numpy as np
from dm_control import mjcf

from enpire.world.task import Task, TaskPhysics, yaw_quat

_COORD = {"x": 0, "y": 1, "z": 2}


def apply_init(physics: TaskPhysics, init_set: Mapping[str, Mapping[str, Any]], init: Mapping[str, float]) -> None:
    """Put each sampled init value where its `set:` says."""
    for name, target in init_set.items():
        value = float(init[name])
        if "joint" in target:
            physics.set_joint_qpos(target["joint"], value)
            continue
        body = physics.body_id(target["body"])
        coordinate = target["coordinate"]
        if coordinate == "yaw":
            physics.model.body_quat[body] = yaw_quat(value)
        else:
            physics.model.body_pos[body][_COORD[coordinate]] = value


def declare_quantities(physics: TaskPhysics, state_space: Mapping[str, Any]) -> None:
    """Bind every quantity of the task spec that has a `from:` declaration."""
    from enpire.world.quantities import build_query

    for name, q in state_space.items():
        if q.source is not None:
            physics.declare(name, build_query(physics.model, physics.data, physics.robot.ee_site, name,
                                              q.source, q.low, q.high))


def find_mjcf(relative: str, primary: Path | str | None = None) -> Path:
    """The MJCF a declarative task names: an absolute path, or one relative to a config directory on the
    search path (the primary one first). The spec keeps the absolute path, so workers need no lookup."""
    from enpire.spec.search_path import config_dirs

    path = Path(relative)
    roots = config_dirs() if primary is None else config_dirs(primary)
    if path.is_absolute():
        if path.is_file():
            return path
    else:
        for root in roots:
            if (root / path).is_file():
                return (root / path).resolve()
    raise FileNotFoundError(f"no file {relative!r} in {', '.join(str(d) for d in roots)}")


class DeclarativeTask(Task):
    """A task defined by its MJCF and yaml alone."""

    name: ClassVar[str] = "declarative"
    xml: ClassVar[str] = ""

    def arena(self) -> mjcf.RootElement:
        assert self.spec.mjcf is not None
        return mjcf.from_path(str(find_mjcf(self.spec.mjcf)))

    def initialize(self, physics: TaskPhysics, init: Mapping[str, float], rng: np.random.Generator) -> None:
        mujoco.mj_kinematics(physics.model, physics.data)  # init `set:` values were applied before this

    def observe(self, physics: TaskPhysics) -> dict[str, np.ndarray]:
        return {name: np.array([physics.quantity(name)]) for name in self.spec.state_space}

    def shaping_reward(self, physics: TaskPhysics) -> float:
        return float(sum(w * physics.quantity(q) for q, w in self.spec.shaping))
