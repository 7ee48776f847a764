"""Robot builders: the MJCF of an arm with its gripper, and the names the controller needs.

A builder returns a fresh `mjcf.RootElement` (dm_control's MJCF object model) whose model
name (e.g. "enarm") becomes the name prefix once the scene attaches it ("enarm/joint_1").
The contract every robot model keeps, so that tasks, the controller and the envelope work
with any robot:

- `arm_joints`: the hinge joints of the arm (gripper excluded), base to wrist, one `motor`
  actuator each (`arm_actuators`, same order, gear 1, ctrlrange = the actuator torque range
  in N·m that `conf/robot/<name>.yaml: actuator_force_range_nm` declares).
- `gripper_actuators`: whatever drives the fingers; `grip_ctrl(grip)` maps the policy's grip
  command in [0, 1] (0 open, 1 closed) to their ctrl values, always inside their ctrlrange.
- `ee_site`: the tool centre point between the fingertips. Its z axis points out of the
  gripper (world -z when "pointing down"), its x axis is the jaw closing axis.
- `home_qpos`: a posture above the table with the gripper pointing down; resets start there
  (plus the task's `arm_joint_noise`).
- every geom of the robot belongs to a body under the robot's root, so the envelope can find
  "contacts involving the robot" by body.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from dm_control import mjcf

from enpire import plugins

# The adapter seam every robot moves through (enpire.hardware) is in safety_sha256 by name
# (enpire.spec.fingerprint.SAFETY_SOURCES), not through an import here: that import made a cycle.


class RobotBuilder(ABC):
    """Builds one robot's MJCF and names its parts (see module docstring)."""

    name: ClassVar[str]
    arm_joints: ClassVar[tuple[str, ...]]
    arm_actuators: ClassVar[tuple[str, ...]]
    gripper_actuators: ClassVar[tuple[str, ...]]
    ee_site: ClassVar[str]
    home_qpos: ClassVar[tuple[float, ...]]

    @abstractmethod
    def build(self) -> mjcf.RootElement:
        """A fresh MJCF model of the arm and gripper, base at its origin."""

    @abstractmethod
    def grip_ctrl(self, grip: float) -> np.ndarray:
        """Gripper actuator controls for a grip command in [0, 1] (clipped)."""

    @abstractmethod
    def gripper_joints(self) -> tuple[str, ...]:
        """Joints of the gripper (observations, resets, opening)."""

    @abstractmethod
    def grip_opening(self, grip_qpos: np.ndarray) -> float:
        """How open the gripper is, from its joint positions (m between jaws, or 0..1 for hands)."""


def register_robot(cls: type[RobotBuilder]) -> type[RobotBuilder]:
    """Register a robot class defined in an already imported module (plugins declare theirs instead)."""
    plugins.register("robots", cls.name, cls)
    return cls


def make_robot(name: str) -> RobotBuilder:
    """A builder of the robot `name`, from whichever plugin defines it (enpire.plugins)."""
    try:
        cls = plugins.resolve("robots", name)
    except KeyError:
        raise ValueError(f"robot.name: got {name!r}; expected one of {plugins.names('robots')}") from None
    return cls()
