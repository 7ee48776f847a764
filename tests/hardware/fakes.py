"""Adapters for the tests: real MuJoCo behind each, with what a test needs to watch or provoke."""

from __future__ import annotations

from typing import ClassVar

from enpire.hardware.adapter import Command, RobotStopped
from enpire.hardware.mujoco_adapter import MujocoAdapter


class CountingAdapter(MujocoAdapter):
    """The MuJoCo robot, counting the commands that reach it (class-wide: the station builds the instance)."""

    name: ClassVar[str] = "counting"
    sent: ClassVar[int] = 0
    connects: ClassVar[int] = 0

    def connect(self) -> None:
        type(self).connects += 1
        super().connect()

    stops: ClassVar[int] = 0

    def send_command(self, command: Command) -> Command:
        type(self).sent += 1
        return super().send_command(command)

    def safe_stop(self) -> None:
        type(self).stops += 1
        super().safe_stop()


class PhysicalMujocoAdapter(CountingAdapter):
    """Stands in for a real arm: declares physical=True (the simulator still moves)."""

    name: ClassVar[str] = "fake_physical"
    physical: ClassVar[bool] = True
    sent: ClassVar[int] = 0
    connects: ClassVar[int] = 0
    stops: ClassVar[int] = 0


class HalvingAdapter(MujocoAdapter):
    """An arm whose driver applies half of each joint torque asked (its own clipping): returns what it applied."""

    name: ClassVar[str] = "halving"
    last: ClassVar[tuple[Command, Command] | None] = None

    def send_command(self, command: Command) -> Command:
        n = len(self.binding.robot.arm_act)
        halved = [v * 0.5 for v in command[:n]] + list(command[n:])
        applied = super().send_command(halved)
        type(self).last = (command, applied)
        return applied


class ReflexAdapter(MujocoAdapter):
    """An arm whose own reflex stops it at its third command (kind set by the test)."""

    name: ClassVar[str] = "reflex"
    kind: ClassVar[str] = "contact_force"
    sent: ClassVar[int] = 0

    def send_command(self, command: Command) -> Command:
        type(self).sent += 1
        if type(self).sent == 3:
            raise RobotStopped(self.kind, "collision reflex", 31.0, 20.0)  # type: ignore[arg-type]
        return super().send_command(command)
