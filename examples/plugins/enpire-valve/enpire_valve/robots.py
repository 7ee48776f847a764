"""enarm_rubber: enpire's enarm with rubber finger pads (three times the friction of bare aluminium).

A robot variant is a RobotBuilder subclass: here it builds the shipped enarm MJCF and changes what
differs. The MJCF model name must equal `name`: the scene prefixes the robot's elements with it.
"""

from __future__ import annotations

from dm_control import mjcf

from enpire.world.robots.enarm import EnArm

PAD_FRICTION = (3.0, 0.02, 0.001)  # sliding, torsional, rolling
PAD_RGBA = (0.12, 0.12, 0.12, 1.0)


class RubberEnArm(EnArm):
    name = "enarm_rubber"

    def build(self) -> mjcf.RootElement:
        root = super().build()
        root.model = self.name
        for geom in ("finger_left_geom", "finger_right_geom"):
            pad = root.find("geom", geom)
            pad.friction = PAD_FRICTION
            pad.rgba = PAD_RGBA
        return root
