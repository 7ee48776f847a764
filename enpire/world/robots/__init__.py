"""Robots: builders of arm + gripper MJCF (see base.py for the contract every robot keeps).

Shipped: `enarm` (enpire's own arm, assets/enarm.xml) and `jaco` (Kinova Jaco arm and hand from
dm-control, driven by torque motors), declared by the package's plugin (enpire.tasks); a
plugin adds its own (docs/add-a-robot.md). `make_robot(name)` returns a builder.
"""

from enpire.world.robots.base import RobotBuilder, make_robot, register_robot

__all__ = ["RobotBuilder", "make_robot", "register_robot"]
