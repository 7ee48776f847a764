"""Robots: builders of arm + gripper MJCF (see base.py for the contract every robot keeps).

Registered: `enarm` (enpire's own arm, assets/enarm.xml) and `jaco` (Kinova Jaco arm and
hand from dm-control, driven by torque motors). `make_robot(name)` returns a builder.
"""

from enpire.world.robots import enarm as _enarm  # noqa: F401  (registers)
from enpire.world.robots import jaco as _jaco  # noqa: F401  (registers)
from enpire.world.robots.base import ROBOTS, RobotBuilder, make_robot, register_robot

__all__ = ["ROBOTS", "RobotBuilder", "make_robot", "register_robot"]
